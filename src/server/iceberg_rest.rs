//! The data root's Iceberg catalog served as an Iceberg REST catalog under `/iceberg`, so
//! any engine with a REST catalog client (PyIceberg, Spark, Trino, DuckDB, iceberg-rust)
//! reads runnel's tables, and writes to them, without knowing where runnel keeps its
//! catalog (the sqlite file of a local data root, or the pointer objects of an S3 one).
//!
//! The endpoints are those of the Iceberg REST catalog specification that table access
//! needs: `GET /iceberg/v1/config`; namespaces (list, create, get, exists); tables (list,
//! create, load, exists, commit, drop). A commit's requirements and updates are applied
//! with the catalog's compare-and-swap ([`commit_raw`]): a requirement that does not
//! hold, or a concurrent commit, answers 409 `CommitFailedException` and changes
//! nothing, so REST writers get the same isolation as runnel's own sinks. Errors use the
//! specification's model, `{"error": {"message", "type", "code"}}`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use iceberg::spec::{Schema, SortOrder, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::{
    ErrorKind, NamespaceIdent, TableCreation, TableIdent, TableRequirement, TableUpdate,
};
use runnel_connectors::iceberg::{IcebergCatalog, RawCommit, commit_raw};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::AppState;

mod checks;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/iceberg/v1/config", get(config))
        .route(
            "/iceberg/v1/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route(
            "/iceberg/v1/namespaces/{namespace}",
            get(get_namespace).head(namespace_exists),
        )
        .route(
            "/iceberg/v1/namespaces/{namespace}/tables",
            get(list_tables).post(create_table),
        )
        .route(
            "/iceberg/v1/namespaces/{namespace}/tables/{table}",
            get(load_table)
                .head(table_exists)
                .post(commit_table)
                .delete(drop_table),
        )
}

/// An error in the REST catalog's model.
struct RestError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl RestError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        RestError {
            status,
            kind,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }
}

impl From<iceberg::Error> for RestError {
    fn from(e: iceberg::Error) -> Self {
        let (status, kind) = match e.kind() {
            ErrorKind::TableNotFound => (StatusCode::NOT_FOUND, "NoSuchTableException"),
            ErrorKind::NamespaceNotFound => (StatusCode::NOT_FOUND, "NoSuchNamespaceException"),
            ErrorKind::TableAlreadyExists => (StatusCode::CONFLICT, "AlreadyExistsException"),
            ErrorKind::CatalogCommitConflicts => (StatusCode::CONFLICT, "CommitFailedException"),
            ErrorKind::DataInvalid | ErrorKind::FeatureUnsupported => {
                (StatusCode::BAD_REQUEST, "BadRequestException")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailureException"),
        };
        RestError::new(status, kind, e.to_string())
    }
}

impl From<runnel_runtime::Error> for RestError {
    fn from(e: runnel_runtime::Error) -> Self {
        match e {
            runnel_runtime::Error::Plan(message) => RestError::bad_request(message),
            other => RestError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceFailureException",
                other.to_string(),
            ),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = json!({ "error": {
            "message": self.message,
            "type": self.kind,
            "code": self.status.as_u16(),
        }});
        (self.status, Json(body)).into_response()
    }
}

type Reply = Result<Response, RestError>;

/// A JSON request body; a malformed one is a 400 in the REST error model.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, RestError> {
    serde_json::from_slice(body).map_err(|e| RestError::bad_request(format!("request body: {e}")))
}

async fn catalog(state: &AppState) -> Result<IcebergCatalog, RestError> {
    state.data.iceberg().await.map_err(|e| {
        RestError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            format!("{e:#}"),
        )
    })
}

/// A namespace of the path: levels separated by the unit separator, names checked like
/// every other name runnel stores.
fn namespace(path: &str) -> Result<NamespaceIdent, RestError> {
    let levels: Vec<String> = path.split('\u{1f}').map(str::to_string).collect();
    for level in &levels {
        runnel_runtime::checkpoint::layout::validate_name("namespace", level)
            .map_err(|e| RestError::bad_request(e.to_string()))?;
    }
    NamespaceIdent::from_vec(levels).map_err(RestError::from)
}

fn table_ident(namespace_path: &str, table: &str) -> Result<TableIdent, RestError> {
    runnel_runtime::checkpoint::layout::validate_name("table", table)
        .map_err(|e| RestError::bad_request(e.to_string()))?;
    Ok(TableIdent::new(
        namespace(namespace_path)?,
        table.to_string(),
    ))
}

/// `LoadTableResult`: where the metadata is, the metadata, no extra client config.
fn load_result(table: &Table) -> Response {
    Json(json!({
        "metadata-location": table.metadata_location(),
        "metadata": table.metadata(),
        "config": {},
    }))
    .into_response()
}

async fn config() -> Json<Value> {
    Json(json!({ "defaults": {}, "overrides": {} }))
}

async fn list_namespaces(State(state): State<AppState>) -> Reply {
    let catalog = catalog(&state).await?;
    let namespaces = catalog.catalog().list_namespaces(None).await?;
    let names: Vec<Vec<String>> = namespaces.iter().map(|n| n.clone().inner()).collect();
    Ok(Json(json!({ "namespaces": names })).into_response())
}

#[derive(Deserialize)]
struct CreateNamespace {
    namespace: Vec<String>,
    #[serde(default)]
    properties: HashMap<String, String>,
}

async fn create_namespace(State(state): State<AppState>, body: Bytes) -> Reply {
    let request: CreateNamespace = parse(&body)?;
    let ident = namespace(&request.namespace.join("\u{1f}"))?;
    let catalog = catalog(&state).await?;
    checks::namespace_properties(&catalog, &request.properties)?;
    let created = catalog
        .catalog()
        .create_namespace(&ident, request.properties)
        .await?;
    Ok(Json(json!({
        "namespace": created.name().clone().inner(),
        "properties": created.properties(),
    }))
    .into_response())
}

async fn get_namespace(State(state): State<AppState>, Path(namespace_path): Path<String>) -> Reply {
    let ident = namespace(&namespace_path)?;
    let catalog = catalog(&state).await?;
    let found = catalog.catalog().get_namespace(&ident).await?;
    Ok(Json(json!({
        "namespace": found.name().clone().inner(),
        "properties": found.properties(),
    }))
    .into_response())
}

async fn namespace_exists(
    State(state): State<AppState>,
    Path(namespace_path): Path<String>,
) -> Reply {
    let ident = namespace(&namespace_path)?;
    let catalog = catalog(&state).await?;
    Ok(if catalog.catalog().namespace_exists(&ident).await? {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    })
}

async fn list_tables(State(state): State<AppState>, Path(namespace_path): Path<String>) -> Reply {
    let ident = namespace(&namespace_path)?;
    let catalog = catalog(&state).await?;
    let tables = catalog.catalog().list_tables(&ident).await?;
    let identifiers: Vec<Value> = tables
        .iter()
        .map(|t| json!({ "namespace": t.namespace().clone().inner(), "name": t.name() }))
        .collect();
    Ok(Json(json!({ "identifiers": identifiers })).into_response())
}

/// `CreateTableRequest`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CreateTable {
    name: String,
    location: Option<String>,
    schema: Schema,
    partition_spec: Option<UnboundPartitionSpec>,
    write_order: Option<SortOrder>,
    #[serde(default)]
    stage_create: bool,
    #[serde(default)]
    properties: HashMap<String, String>,
}

async fn create_table(
    State(state): State<AppState>,
    Path(namespace_path): Path<String>,
    body: Bytes,
) -> Reply {
    let request: CreateTable = parse(&body)?;
    let ident = table_ident(&namespace_path, &request.name)?;
    if request.stage_create {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "UnsupportedOperationException",
            "staged table creation is not supported",
        ));
    }
    let catalog = catalog(&state).await?;
    let location =
        checks::creation_location(&catalog, &ident, request.location, &request.properties).await?;
    let creation = TableCreation {
        name: request.name,
        location,
        schema: request.schema,
        partition_spec: request.partition_spec,
        sort_order: request.write_order,
        properties: request.properties,
        format_version: iceberg::spec::FormatVersion::V2,
    };
    let table = catalog
        .catalog()
        .create_table(ident.namespace(), creation)
        .await?;
    Ok(load_result(&table))
}

async fn load_table(
    State(state): State<AppState>,
    Path((namespace_path, table)): Path<(String, String)>,
) -> Reply {
    let ident = table_ident(&namespace_path, &table)?;
    let catalog = catalog(&state).await?;
    let table = catalog.catalog().load_table(&ident).await?;
    Ok(load_result(&table))
}

async fn table_exists(
    State(state): State<AppState>,
    Path((namespace_path, table)): Path<(String, String)>,
) -> Reply {
    let ident = table_ident(&namespace_path, &table)?;
    let catalog = catalog(&state).await?;
    Ok(if catalog.catalog().table_exists(&ident).await? {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    })
}

/// `CommitTableRequest`.
#[derive(Deserialize)]
struct CommitTable {
    #[serde(default)]
    requirements: Vec<TableRequirement>,
    updates: Vec<TableUpdate>,
}

async fn commit_table(
    State(state): State<AppState>,
    Path((namespace_path, table)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let request: CommitTable = parse(&body)?;
    let ident = table_ident(&namespace_path, &table)?;
    let catalog = catalog(&state).await?;
    let current = catalog.catalog().load_table(&ident).await?;
    let owners = checks::owners(&state, &ident).await?;
    checks::updates(&catalog, &current, &request.updates, &owners)?;
    match commit_raw(&catalog, &ident, request.requirements, request.updates).await? {
        RawCommit::Committed(table) => Ok(Json(json!({
            "metadata-location": table.metadata_location(),
            "metadata": table.metadata(),
        }))
        .into_response()),
        RawCommit::Conflict(reason) => Err(RestError::new(
            StatusCode::CONFLICT,
            "CommitFailedException",
            reason,
        )),
    }
}

async fn drop_table(
    State(state): State<AppState>,
    Path((namespace_path, table)): Path<(String, String)>,
) -> Reply {
    let ident = table_ident(&namespace_path, &table)?;
    let catalog = catalog(&state).await?;
    if let Some(job) = checks::owners(&state, &ident).await?.first() {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            "ConflictException",
            format!("job {job} writes table {ident}; drop the job before the table"),
        ));
    }
    catalog.catalog().drop_table(&ident).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
