//! The hot-items dataflow (Nexmark q5): the auctions with the most bids in every
//! 10-second window, sliding every 2 seconds.

use std::sync::Arc;
use std::time::Duration;

use runnel_operators::{StreamExt, WindowKind, count_star};
use runnel_runtime::{Dataflow, JobGraph, Result, Sink, Source, Stream, WatermarkStrategy};

/// Shape of a hot-items job.
#[derive(Debug, Clone)]
pub struct HotItems {
    pub window: Duration,
    pub slide: Duration,
    pub top: usize,
    pub max_out_of_orderness: Duration,
    pub idle_timeout: Duration,
    pub parallelism: usize,
}

impl Default for HotItems {
    fn default() -> Self {
        HotItems {
            window: Duration::from_secs(10),
            slide: Duration::from_secs(2),
            top: 1,
            max_out_of_orderness: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            parallelism: 2,
        }
    }
}

impl HotItems {
    /// source -> watermark -> key_by(auction) -> HOP count -> top-K -> sink.
    pub fn build(&self, bids: Arc<dyn Source>, sink: Arc<dyn Sink>) -> Result<JobGraph> {
        let flow = Dataflow::new("hot_items").with_parallelism(self.parallelism);
        self.stream(&flow, bids)?.sink("hot_items", sink)?;
        flow.build()
    }

    /// The ranked windows as a stream of `flow`, for callers that pick the sink
    /// themselves (its schema decides the output table or topic).
    pub fn stream(&self, flow: &Dataflow, bids: Arc<dyn Source>) -> Result<Stream> {
        let watermark = WatermarkStrategy::bounded("date_time", self.max_out_of_orderness)
            .with_idle_timeout(self.idle_timeout);
        flow.source("bids", bids, watermark)?
            .key_by(&["auction"])?
            .window(
                WindowKind::Hopping {
                    size: self.window,
                    slide: self.slide,
                },
                vec![count_star().alias("bids")],
            )?
            .top_k(self.top, &[("bids", true)])
    }
}
