//! runnel-operators: the built-in operators, vectorized over Arrow batches.
//!
//! - [`filter`] and [`project`]: DataFusion physical expressions over each batch;
//! - [`window`]: tumbling, hopping (from panes) and session window aggregates;
//! - [`topk`]: top-K per window, partial per subtask then merged globally;
//! - [`trending`]: a key's window value against its value one period earlier;
//! - [`join`]: inner join of the rows of two windowed streams, window by window.
//!
//! [`StreamExt`] adds them to the runtime's fluent builder. This crate knows no connector
//! and no SQL.

// Tests may read the machine's clock; the library takes it injected (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]
// Library code returns errors; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod expr;
pub mod filter;
pub mod join;
pub mod project;
pub mod state;
pub mod stream_ext;
pub mod topk;
pub mod trending;
pub mod window;

pub use join::WindowJoinSpec;
pub use stream_ext::StreamExt;
pub use topk::{SortKey, TopKSpec};
pub use trending::TrendingSpec;
pub use window::{
    AggregateExpr, AggregateFunction, WINDOW_END, WINDOW_START, WindowAggregateSpec, WindowKind,
    avg, count, count_star, max, min, sum,
};
