//! Window join: an inner join of the rows of two windowed streams that belong to the same
//! window, emitted when the window closes (Flink's window join).
//!
//! Both inputs are outputs of window operators: every row carries the bounds of its
//! window, and a window's rows arrive before the watermark that passes its end (an
//! upstream window operator emits a window's rows and only then forwards the watermark).
//! Once the combined watermark `W` (the minimum over both inputs, as the runtime delivers
//! it) reaches a window's end, both sides of that window are complete: its rows are
//! joined, emitted and dropped, so nothing is emitted twice and state holds only windows
//! that are still open. A row whose window already closed is late: it goes to
//! [`Output::emit_late`](runnel_runtime::Output::emit_late), never silently away.
//!
//! The equi-join keys must pair the two window ends (and should pair the window starts,
//! for windows of equal end and different sizes): rows only ever meet rows of their own
//! window, which is what lets one watermark join all the windows it closes in a single
//! vectorized pass (Nexmark q5's `AuctionBids JOIN MaxBids ON starttime = starttime AND
//! endtime = endtime AND num >= maxn` is keys `[starttime, endtime]` and the residual
//! `num >= maxn`). A row with a null key matches nothing, as in SQL, and is not buffered.
//!
//! Design, file by file:
//! * `plan`: the spec resolved against both input schemas, the output schema (all left
//!   columns, then all right columns) and the compiled residual predicate;
//! * `operator`: the subtask: rows buffered per side and window end, fired on watermarks;
//! * `matching`: equal keys in Arrow's row format through a hash table built on the right
//!   side and probed with the left, giving the index pairs that `take` turns into rows;
//! * `snapshot`: the buffered rows as checkpoint state (see there).
//!
//! Late rows of the right input carry the right input's schema, while the runtime
//! declares a node's late-rows output with the schema of its first input: they are
//! counted like the left ones, but a late-rows sink attached to a window join receives
//! batches of both schemas.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
//! use datafusion_expr::col;
//! use runnel_operators::join::WindowJoinSpec;
//!
//! let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
//! let auction_bids = Arc::new(Schema::new(vec![
//!     Field::new("auction", DataType::Int64, false),
//!     Field::new("num", DataType::Int64, false),
//!     Field::new("starttime", ts.clone(), false),
//!     Field::new("endtime", ts.clone(), false),
//! ]));
//! let max_bids = Arc::new(Schema::new(vec![
//!     Field::new("maxn", DataType::Int64, false),
//!     Field::new("max_starttime", ts.clone(), false),
//!     Field::new("max_endtime", ts, false),
//! ]));
//! let q5 = WindowJoinSpec::new(
//!     ["starttime", "endtime"],
//!     ["max_starttime", "max_endtime"],
//!     "endtime",
//!     "max_endtime",
//! )
//! .with_residual(col("num").gt_eq(col("maxn")));
//! let output = q5.output_schema(&auction_bids, &max_bids).unwrap();
//! assert_eq!(output.fields().len(), 7);
//! let operator = q5.create_with(&auction_bids, &max_bids, 128).unwrap();
//! ```

use arrow::datatypes::{Schema, SchemaRef};
use datafusion_expr::Expr;
use runnel_runtime::keys::DEFAULT_MAX_KEY_GROUPS;
use runnel_runtime::{Operator, Result};

mod matching;
mod operator;
mod plan;
mod snapshot;

use operator::WindowJoinOperator;
use plan::JoinPlan;

/// An inner window join of a left and a right windowed stream; see the module docs.
#[derive(Debug, Clone)]
pub struct WindowJoinSpec {
    /// Equi-join columns of the left input, paired with `right_keys` by position. They
    /// include the left window's end (paired with the right one's) and usually its start.
    /// Each pair must have one type; key types must be hashable (integers, strings,
    /// timestamps, ...), since both inputs are routed by them.
    pub left_keys: Vec<String>,
    /// Equi-join columns of the right input, one per left key.
    pub right_keys: Vec<String>,
    /// The left column with the end of each row's window: the row's window closes when
    /// the watermark reaches it. A timestamp or BIGINT milliseconds, never null.
    pub left_end: String,
    /// The right column with the end of each row's window.
    pub right_end: String,
    /// A predicate over the joined columns that every emitted pair must satisfy (null
    /// counts as false, as in SQL's `ON`), or `None`.
    pub residual: Option<Expr>,
}

impl WindowJoinSpec {
    /// A join on pairwise equal keys, without a residual predicate.
    pub fn new<L: Into<String>, R: Into<String>>(
        left_keys: impl IntoIterator<Item = L>,
        right_keys: impl IntoIterator<Item = R>,
        left_end: impl Into<String>,
        right_end: impl Into<String>,
    ) -> Self {
        WindowJoinSpec {
            left_keys: left_keys.into_iter().map(Into::into).collect(),
            right_keys: right_keys.into_iter().map(Into::into).collect(),
            left_end: left_end.into(),
            right_end: right_end.into(),
            residual: None,
        }
    }

    /// The same join, keeping only pairs for which `predicate` is true.
    pub fn with_residual(mut self, predicate: Expr) -> Self {
        self.residual = Some(predicate);
        self
    }

    /// The schema of the join's output: all left columns, then all right columns. Checks
    /// every part of the spec against both inputs; column names must differ across the
    /// sides (rename one side first).
    pub fn output_schema(&self, left: &Schema, right: &Schema) -> Result<SchemaRef> {
        let left = SchemaRef::new(left.clone());
        let right = SchemaRef::new(right.clone());
        Ok(JoinPlan::new(self, &left, &right)?.output().clone())
    }

    /// Creates one join subtask in a job of [`DEFAULT_MAX_KEY_GROUPS`] key groups; see
    /// [`WindowJoinSpec::create_with`].
    pub fn create(&self, left: &SchemaRef, right: &SchemaRef) -> Result<Box<dyn Operator>> {
        self.create_with(left, right, DEFAULT_MAX_KEY_GROUPS)
    }

    /// Creates one join subtask for inputs of schemas `left` (input 0) and `right`
    /// (input 1) in a job of `max_key_groups` key groups
    /// (`OperatorContext::max_key_groups`): its snapshots tag every buffered row with the
    /// key group of its join key, so that they can be restored at another parallelism.
    pub fn create_with(
        &self,
        left: &SchemaRef,
        right: &SchemaRef,
        max_key_groups: u32,
    ) -> Result<Box<dyn Operator>> {
        let plan = JoinPlan::new(self, left, right)?;
        Ok(Box::new(WindowJoinOperator::new(plan, max_key_groups)?))
    }
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
