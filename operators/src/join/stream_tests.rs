//! `StreamExt::window_join` in a dataflow: two window aggregates over one source, joined
//! with parallelism 2. Running a job needs a source and a sink from the connectors crate,
//! which this crate must not know; these tests check the graph the builder makes (both
//! inputs hashed on their join keys, so matching rows meet in one subtask) and that the
//! factory it registers creates working subtasks from the node's input schemas.

use std::collections::HashMap;
use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion_expr::col;
use runnel_runtime::graph::NodeKind;
use runnel_runtime::{
    Dataflow, Error, OperatorContext, Result, Sink, SinkWriter, Source, SourceReader, Stream,
    WatermarkStrategy,
};

use super::WindowJoinSpec;
use crate::{StreamExt, WindowKind, count_star, max};

/// What an `async fn` of an `async_trait` returns.
type Async<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A source of bids that describes its rows but is never opened: the tests only plan.
#[derive(Debug)]
struct Bids;

impl Source for Bids {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("auction", DataType::Int64, false),
            Field::new("price", DataType::Int64, false),
            Field::new(
                "date_time",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]))
    }

    fn partitions(&self) -> usize {
        2
    }

    fn open_at<'s, 'p, 'q, 'a>(
        &'s self,
        _partitions: &'p [u32],
        _positions: &'q HashMap<u32, u64>,
    ) -> Async<'a, Box<dyn SourceReader>>
    where
        's: 'a,
        'p: 'a,
        'q: 'a,
        Self: 'a,
    {
        Box::pin(ready(Err(Error::Internal("a planning-only source".into()))))
    }
}

#[derive(Debug)]
struct Nowhere;

impl Sink for Nowhere {
    fn open<'s, 'a>(
        &'s self,
        _subtask: usize,
        _parallelism: usize,
    ) -> Async<'a, Box<dyn SinkWriter>>
    where
        's: 'a,
        Self: 'a,
    {
        Box::pin(ready(Err(Error::Internal("a planning-only sink".into()))))
    }
}

/// Two window aggregates over the bids: bids per auction and window (keyed, parallel),
/// and the highest price of each window (one subtask), its columns renamed so that the
/// two sides do not clash.
fn windowed_sides(flow: &Dataflow) -> (Stream, Stream) {
    let hop = || WindowKind::Hopping {
        size: Duration::from_secs(10),
        slide: Duration::from_secs(2),
    };
    let watermark = WatermarkStrategy::bounded("date_time", Duration::from_secs(1));
    let bids = flow.source("bids", Arc::new(Bids), watermark).unwrap();
    let auction_bids = bids
        .clone()
        .key_by(&["auction"])
        .unwrap()
        .window(hop(), vec![count_star().alias("num")])
        .unwrap();
    let max_prices = bids
        .window(hop(), vec![max("price").alias("top")])
        .unwrap()
        .project(vec![
            (col("window_start"), "top_start".into()),
            (col("window_end"), "top_end".into()),
            (col("top"), "top".into()),
        ])
        .unwrap();
    (auction_bids, max_prices)
}

fn spec() -> WindowJoinSpec {
    WindowJoinSpec::new(
        ["window_start", "window_end"],
        ["top_start", "top_end"],
        "window_end",
        "top_end",
    )
    .with_residual(col("num").lt(col("top")))
}

#[test]
fn both_inputs_are_hashed_on_their_join_keys() {
    let flow = Dataflow::new("joined").with_parallelism(2);
    let (auction_bids, max_prices) = windowed_sides(&flow);
    let joined = auction_bids.window_join(&max_prices, spec()).unwrap();
    assert_eq!(joined.time_column(), Some("window_end"));
    let names: Vec<&str> = joined
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "auction",
            "window_start",
            "window_end",
            "num",
            "top_start",
            "top_end",
            "top"
        ]
    );
    joined.sink("out", Arc::new(Nowhere)).unwrap();
    let graph = flow.build().unwrap();
    let join_line = graph
        .explain()
        .lines()
        .find(|l| l.contains("window_join"))
        .unwrap()
        .to_string();
    assert!(
        join_line.ends_with(
            "operator window_join x2 <- window via hash(window_start, window_end); \
             project via hash(top_start, top_end)"
        ),
        "{join_line}"
    );

    // The registered factory builds a subtask from the node's two input schemas.
    let id = graph
        .nodes
        .iter()
        .position(|n| n.name == "window_join")
        .unwrap();
    let node = &graph.nodes[id];
    let NodeKind::Operator { factory } = &node.kind else {
        panic!("the join is an operator");
    };
    let context = |input_schemas: Vec<SchemaRef>| OperatorContext {
        node: node.name.clone(),
        subtask: 1,
        parallelism: 2,
        max_key_groups: graph.max_key_groups,
        input_schemas,
    };
    assert!(factory(&context(node.input_schemas.clone())).is_ok());
    let one_input = factory(&context(node.input_schemas[..1].to_vec()));
    assert!(matches!(one_input.err(), Some(Error::Internal(_))));
}

#[test]
fn a_join_the_inputs_cannot_make_is_refused_while_planning() {
    let flow = Dataflow::new("joined").with_parallelism(2);
    let (auction_bids, max_prices) = windowed_sides(&flow);
    // Joining a stream with itself: every column is on both sides.
    let same = WindowJoinSpec::new(["window_end"], ["window_end"], "window_end", "window_end");
    let err = auction_bids.window_join(&auction_bids, same).unwrap_err();
    assert!(matches!(err, Error::Plan(_)), "{err}");
    let unknown = WindowJoinSpec {
        right_end: "window_end".into(),
        ..spec()
    };
    assert!(matches!(
        auction_bids.window_join(&max_prices, unknown),
        Err(Error::Plan(_))
    ));
}
