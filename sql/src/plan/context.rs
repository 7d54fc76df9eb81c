//! What DataFusion's SQL planner may see: the declared sources as tables, DataFusion's
//! built-in scalar, aggregate and window functions, and the window table functions
//! (`TUMBLE`, `HOP`, `SESSION`) as a relation planner.
//!
//! Planning goes through DataFusion so that names, types and coercions are resolved
//! exactly as DataFusion would; the resulting logical plan is then translated into runnel
//! operators ([`super::translate`]).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, TableReference, plan_datafusion_err};
use datafusion::execution::SessionStateDefaults;
use datafusion::logical_expr::logical_plan::builder::LogicalTableSource;
use datafusion::logical_expr::planner::{ContextProvider, ExprPlanner, RelationPlanner};
use datafusion::logical_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, TableSource, WindowUDF};

use super::window_tvf::WindowTvfPlanner;
use crate::statement::SourceDef;

/// The declared sources, by name.
pub(crate) type Sources = Arc<HashMap<String, SourceDef>>;

/// DataFusion's view of the catalog.
pub(crate) struct SqlContext {
    sources: Sources,
    options: ConfigOptions,
    scalars: HashMap<String, Arc<ScalarUDF>>,
    aggregates: HashMap<String, Arc<AggregateUDF>>,
    windows: HashMap<String, Arc<WindowUDF>>,
    expr_planners: Vec<Arc<dyn ExprPlanner>>,
    relation_planners: Vec<Arc<dyn RelationPlanner>>,
}

impl SqlContext {
    /// A context over `sources`.
    pub fn new(sources: Sources) -> Self {
        let mut options = ConfigOptions::default();
        // Strings stay Utf8, the type sources and operators use.
        options.sql_parser.map_string_types_to_utf8view = false;
        // Column references keep their position, for error messages.
        options.sql_parser.collect_spans = true;
        let mut scalars = HashMap::new();
        for f in SessionStateDefaults::default_scalar_functions() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                scalars.insert(name.to_string(), Arc::clone(&f));
            }
        }
        let mut aggregates = HashMap::new();
        for f in SessionStateDefaults::default_aggregate_functions() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                aggregates.insert(name.to_string(), Arc::clone(&f));
            }
        }
        let mut windows = HashMap::new();
        for f in SessionStateDefaults::default_window_functions() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                windows.insert(name.to_string(), Arc::clone(&f));
            }
        }
        SqlContext {
            relation_planners: vec![Arc::new(WindowTvfPlanner::new(Arc::clone(&sources)))],
            sources,
            options,
            scalars,
            aggregates,
            windows,
            expr_planners: SessionStateDefaults::default_expr_planners(),
        }
    }

    /// A context with no sources, for expressions only.
    pub fn empty() -> Self {
        SqlContext::new(Arc::default())
    }
}

impl ContextProvider for SqlContext {
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> Result<Arc<dyn TableSource>, DataFusionError> {
        let source = match &name {
            TableReference::Bare { table } => self.sources.get(table.as_ref()),
            _ => None,
        };
        match source {
            Some(source) => Ok(Arc::new(LogicalTableSource::new(source.schema()))),
            None => {
                let mut known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
                known.sort_unstable();
                Err(plan_datafusion_err!(
                    "unknown source `{name}` (declared sources: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            }
        }
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.expr_planners
    }

    fn get_relation_planners(&self) -> &[Arc<dyn RelationPlanner>] {
        &self.relation_planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.scalars.get(name).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.aggregates.get(name).cloned()
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.windows.get(name).cloned()
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.scalars.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.aggregates.keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.windows.keys().cloned().collect()
    }
}
