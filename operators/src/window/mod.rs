//! Windowed aggregates over event time: tumbling, hopping (sliding), cumulative and
//! session windows.
//!
//! Semantics follow Flink. Event time comes from one column (any timestamp, or BIGINT
//! milliseconds). A watermark `W` says no row with event time below `W` will follow; a
//! window `[start, end)` is complete and fires once `W >= end`. Tumbling, hopping and
//! cumulative windows are aligned to the epoch (a 10 s window starts at a multiple of
//! 10 s); a cumulative window grows from such a start by steps up to its maximum size; a
//! session of a key ends `gap` after its last row. A row is late when every window it
//! belongs to has already fired; late rows are not aggregated but handed to
//! [`Output::emit_late`](runnel_runtime::Output::emit_late), so none vanish
//! unaccounted.
//!
//! Output: the key columns, `window_start` and `window_end` (`Timestamp(ms)`), then one
//! column per aggregate, named by its alias. The windows fired by one watermark are
//! emitted ordered by `window_end`.
//!
//! Design, file by file:
//! * `aggregate`: the aggregate expressions and their typing;
//! * `plan`: the spec resolved against the input schema, the output schema, and the
//!   per-batch helpers both operators share;
//! * `accumulator`, `slots`: columnar accumulators (one typed loop per batch, no
//!   per-row dispatch) and the slots of open groups they share;
//! * `group_keys`, `key_tables`: key rows to dense key ids (a typed i64 table for one
//!   integer-like key column, Arrow's row format for anything else);
//! * `panes`: tumbling/hopping windows computed from panes of `gcd(size, slide)`, and
//!   cumulative windows from panes of their step: each row is aggregated once, windows
//!   are merged from panes when they fire;
//! * `session`: per-key sessions that merge as rows arrive;
//! * `checkpoint`, `pane_snapshot`, `session_snapshot`: state for checkpoints.
//!
//! # Checkpoints
//!
//! Both operators implement [`Operator::snapshot`] and [`Operator::restore`] following
//! the crate's state convention ([`crate::state`]): one row per open group (a pane's
//! group of a key, or a session) with a `_key_group` column first, the group's times,
//! the key columns in their input types and the accumulator state as columns (`COUNT`:
//! count; `SUM`/`MIN`/`MAX`: the value, null until one was seen; `AVG`: sum and count);
//! the watermark and the kind of state in the schema metadata. The key group is computed
//! with the job's `max_key_groups` ([`WindowAggregateSpec::create_with`]), the way the
//! hash edge routes rows, so after a rescale each subtask restores exactly the keys it
//! will receive. A subtask restores from the parts of any number of old subtasks; the
//! watermark resumes at their minimum (equal to each of them for an aligned checkpoint,
//! see [`crate::state::restored_watermark`]). Snapshots are built column by column from
//! the accumulators' vectors. A restored operator behaves exactly as if it had never
//! stopped: same windows, same values bit for bit, same late rows.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
//! use runnel_operators::window::{WindowAggregateSpec, WindowKind, count_star, max};
//!
//! let input = Arc::new(Schema::new(vec![
//!     Field::new("auction", DataType::Int64, false),
//!     Field::new("price", DataType::Int64, false),
//!     Field::new("date_time", DataType::Timestamp(TimeUnit::Millisecond, None), false),
//! ]));
//! let spec = WindowAggregateSpec {
//!     kind: WindowKind::Hopping { size: Duration::from_secs(10), slide: Duration::from_secs(2) },
//!     time_column: "date_time".into(),
//!     key_columns: vec!["auction".into()],
//!     aggregates: vec![count_star().alias("bids"), max("price")],
//! };
//! let output = spec.output_schema(&input).unwrap();
//! let names: Vec<_> = output.fields().iter().map(|f| f.name().as_str()).collect();
//! assert_eq!(names, ["auction", "window_start", "window_end", "bids", "max_price"]);
//! let operator = spec.create_with(&input, 128).unwrap();
//! ```

use std::fmt;
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use runnel_runtime::keys::DEFAULT_MAX_KEY_GROUPS;
use runnel_runtime::{Error, Millis, Operator, Result};
use serde::{Deserialize, Serialize};

mod accumulator;
mod aggregate;
mod checkpoint;
mod count_avg;
mod group_keys;
mod key_tables;
mod panes;
mod plan;
mod session;
mod slots;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod validation_tests;

pub use aggregate::{AggregateExpr, AggregateFunction, avg, count, count_star, max, min, sum};
pub use plan::{WINDOW_END, WINDOW_START};

use panes::{PaneLayout, PaneWindowOperator};
use plan::{MAX_WINDOW, WindowPlan};
use session::SessionWindowOperator;

/// The shape of the windows. Serialized as SQL plans store it (`{"kind": "hop",
/// "slide_ms": 2000, "size_ms": 10000}`), so a stored job definition names its windows
/// the way the SQL did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Hash, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum WindowKind {
    /// Back-to-back windows of `size` (`TUMBLE`).
    #[serde(rename = "tumble")]
    Tumbling {
        #[serde(rename = "size_ms", with = "serde_millis")]
        size: Duration,
    },
    /// Windows of `size` starting every `slide` (`HOP`); `slide` must not exceed `size`.
    /// A row belongs to about `size / slide` windows but is aggregated only once.
    #[serde(rename = "hop")]
    Hopping {
        #[serde(rename = "size_ms", with = "serde_millis")]
        size: Duration,
        #[serde(rename = "slide_ms", with = "serde_millis")]
        slide: Duration,
    },
    /// Per key, rows less than `gap` apart (`SESSION`); a session ends `gap` after its
    /// last row.
    #[serde(rename = "session")]
    Session {
        #[serde(rename = "gap_ms", with = "serde_millis")]
        gap: Duration,
    },
    /// Windows that start at every multiple of `max_size` and grow by `step` until they
    /// are `max_size` long (`CUMULATE`): a row at `t` in the period starting at `b`
    /// belongs to every `[b, b + k * step)` that ends after `t`. Early, growing results
    /// of one long window (revenue so far today, every hour); `max_size` must be a
    /// multiple of `step`. A row is aggregated once, into its step.
    #[serde(rename = "cumulate")]
    Cumulative {
        #[serde(rename = "step_ms", with = "serde_millis")]
        step: Duration,
        #[serde(rename = "max_size_ms", with = "serde_millis")]
        max_size: Duration,
    },
}

/// Durations as whole milliseconds.
mod serde_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &Duration| d.as_millis();
        match self {
            WindowKind::Tumbling { size } => write!(f, "TUMBLE(size {} ms)", ms(size)),
            WindowKind::Hopping { size, slide } => {
                write!(f, "HOP(slide {} ms, size {} ms)", ms(slide), ms(size))
            }
            WindowKind::Session { gap } => write!(f, "SESSION(gap {} ms)", ms(gap)),
            WindowKind::Cumulative { step, max_size } => write!(
                f,
                "CUMULATE(step {} ms, max size {} ms)",
                ms(step),
                ms(max_size)
            ),
        }
    }
}

/// A window aggregate: `SELECT keys, window_start, window_end, aggregates ... GROUP BY
/// keys, window`.
#[derive(Debug, Clone)]
pub struct WindowAggregateSpec {
    /// The windows.
    pub kind: WindowKind,
    /// The event-time column: a timestamp of any unit, or BIGINT milliseconds.
    pub time_column: String,
    /// The grouping key columns (possibly none: one group per window).
    pub key_columns: Vec<String>,
    /// The aggregates, one output column each.
    pub aggregates: Vec<AggregateExpr>,
}

fn millis(duration: Duration, what: &str) -> Result<Millis> {
    if duration.is_zero() {
        return Err(Error::Plan(format!("window {what} must be positive")));
    }
    if !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(Error::Plan(format!(
            "window {what} {duration:?} is not a whole number of milliseconds"
        )));
    }
    Millis::try_from(duration.as_millis())
        .ok()
        .filter(|&ms| ms <= MAX_WINDOW)
        .ok_or_else(|| Error::Plan(format!("window {what} {duration:?} is too large")))
}

/// The window kind in milliseconds.
enum Geometry {
    Panes(PaneLayout),
    Session(Millis),
}

impl WindowKind {
    fn geometry(&self) -> Result<Geometry> {
        match *self {
            WindowKind::Tumbling { size } => {
                let size = millis(size, "size")?;
                Ok(Geometry::Panes(PaneLayout::new(size, size)))
            }
            WindowKind::Hopping { size, slide } => {
                let (size, slide) = (millis(size, "size")?, millis(slide, "slide")?);
                if slide > size {
                    return Err(Error::Plan(format!(
                        "hopping window slide ({slide} ms) is larger than its size ({size} ms): \
                         rows between windows would belong to none"
                    )));
                }
                Ok(Geometry::Panes(PaneLayout::new(size, slide)))
            }
            WindowKind::Cumulative { step, max_size } => {
                let (step, max_size) = (millis(step, "step")?, millis(max_size, "max size")?);
                if max_size % step != 0 {
                    return Err(Error::Plan(format!(
                        "cumulative window max size ({max_size} ms) is not a multiple of its \
                         step ({step} ms): windows grow by whole steps up to the max size"
                    )));
                }
                Ok(Geometry::Panes(PaneLayout::cumulative(step, max_size)))
            }
            WindowKind::Session { gap } => Ok(Geometry::Session(millis(gap, "gap")?)),
        }
    }
}

impl WindowAggregateSpec {
    /// The schema of the operator's output for `input`; checks the whole spec (columns
    /// exist, types fit the aggregates and keys, sizes are valid, names are unique) and
    /// says what is wrong as [`Error::Plan`].
    pub fn output_schema(&self, input: &Schema) -> Result<SchemaRef> {
        self.kind.geometry()?;
        let plan = WindowPlan::new(self, &SchemaRef::new(input.clone()))?;
        Ok(plan.output_schema().clone())
    }

    /// Creates an operator subtask for rows of `input`, in a job of
    /// [`DEFAULT_MAX_KEY_GROUPS`] key groups; see [`WindowAggregateSpec::create_with`].
    pub fn create(&self, input: &SchemaRef) -> Result<Box<dyn Operator>> {
        self.create_with(input, DEFAULT_MAX_KEY_GROUPS)
    }

    /// Creates an operator subtask for rows of `input` in a job of `max_key_groups` key
    /// groups (`OperatorContext::max_key_groups`): its snapshots tag every row of state
    /// with the key group of its key, so that they can be restored at another parallelism.
    pub fn create_with(&self, input: &SchemaRef, max_key_groups: u32) -> Result<Box<dyn Operator>> {
        let geometry = self.kind.geometry()?;
        let plan = WindowPlan::new(self, input)?;
        let kg = max_key_groups;
        Ok(match geometry {
            Geometry::Panes(layout) => Box::new(PaneWindowOperator::new(plan, layout, kg)?),
            Geometry::Session(gap) => Box::new(SessionWindowOperator::new(plan, gap, kg)?),
        })
    }
}
