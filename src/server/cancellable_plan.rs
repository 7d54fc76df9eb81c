//! Cancelling a running DataFusion plan. Aborting the task that drives a query is not
//! enough: an operator whose input is always ready (a cross join feeding an aggregate)
//! never yields, so the abort never takes effect and the query burns its core to the
//! end. Every operator's output is therefore wrapped in [`Cancellable`], which checks
//! the query's [`Cancel`] flag on each batch and ends the stream with an error once it
//! is set; the operator above stops at its next batch.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{Stream, StreamExt};

/// Set once a query's time is up or its client has gone.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `plan` with every operator's output checked against `cancel`.
pub fn cancellable(
    plan: Arc<dyn ExecutionPlan>,
    cancel: &Cancel,
) -> Result<Arc<dyn ExecutionPlan>> {
    let wrapped = plan
        .transform_up(|node| {
            let wrapped: Arc<dyn ExecutionPlan> = Arc::new(Cancellable {
                input: node,
                cancel: cancel.clone(),
            });
            Ok(Transformed::yes(wrapped))
        })?
        .data;
    Ok(wrapped)
}

/// Passes its input through, batch by batch, until the query is cancelled.
#[derive(Debug)]
struct Cancellable {
    input: Arc<dyn ExecutionPlan>,
    cancel: Cancel,
}

impl DisplayAs for Cancellable {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cancellable")
    }
}

impl ExecutionPlan for Cancellable {
    fn name(&self) -> &str {
        "Cancellable"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "Cancellable takes exactly one input".into(),
            ));
        }
        Ok(Arc::new(Cancellable {
            input: children.swap_remove(0),
            cancel: self.cancel.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(CancellableStream {
            input: self.input.execute(partition, context)?,
            cancel: self.cancel.clone(),
        }))
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        self.input.partition_statistics(partition)
    }
}

struct CancellableStream {
    input: SendableRecordBatchStream,
    cancel: Cancel,
}

impl Stream for CancellableStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.cancel.is_set() {
            return Poll::Ready(Some(Err(DataFusionError::Execution(
                "the query was cancelled".into(),
            ))));
        }
        self.input.poll_next_unpin(cx)
    }
}

impl RecordBatchStream for CancellableStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use datafusion::physical_plan::collect;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// Sums a cross join of 10^12 rows: it never yields, so only the flag stops it.
    #[tokio::test]
    async fn a_cancelled_plan_stops_within_a_batch_even_when_it_never_yields() {
        let ctx = SessionContext::new();
        let sql = "WITH t(x) AS (VALUES (1),(2),(3),(4),(5),(6),(7),(8),(9),(10)), \
            h(x) AS (SELECT a.x FROM t a, t b) \
            SELECT sum(a.x + b.x + c.x + d.x + e.x + f.x) FROM h a, h b, h c, h d, h e, h f";
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let cancel = Cancel::default();
        let plan = cancellable(plan, &cancel).unwrap();
        let setter = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            setter.set();
        });
        let started = Instant::now();
        let error = collect(plan, ctx.task_ctx()).await.unwrap_err();
        assert!(error.to_string().contains("cancelled"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
