//! Where an Iceberg sink's tables live: a catalog, plus the object store that keeps each
//! sink's ledger of committed epochs.
//!
//! The embedded default is Iceberg's SQL catalog on sqlite, `{dir}/catalog.db`, with the
//! warehouse (metadata and data files) in `{dir}/warehouse` and the ledger under the same
//! directory, so a data root holds everything. Other engines read those tables through the
//! same sqlite file and catalog name [`CATALOG_NAME`] (PyIceberg's `SqlCatalog`), or from
//! a table's metadata file. Tables go to the namespace [`NAMESPACE`].
//!
//! A data root in an object store (S3) has no place for a sqlite file; its catalog is
//! kept in the store itself ([`IcebergCatalog::on_object_store`]).

use std::collections::HashMap;
use std::fmt;
use std::path::Path as FsPath;
use std::sync::Arc;

use iceberg::io::LocalFsStorageFactory;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_rest::{REST_CATALOG_PROP_URI, RestCatalogBuilder};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};
use object_store::ObjectStore;
use object_store::path::Path;
use runnel_runtime::{Ambient, Error, Result};

use super::iceberg_error;
use super::schema::{check_compatible, table_schema};
use super::store_catalog::ObjectStoreCatalog;
use super::swap::{MetadataSwap, RestCommits};
use crate::log::SyncedLocal;

/// Name of the embedded SQL catalog (a reader must open it under the same name).
pub const CATALOG_NAME: &str = "runnel";
/// Namespace of the tables sinks create.
pub const NAMESPACE: &str = "default";
/// File name of the embedded catalog's database, in the data directory.
pub const CATALOG_DB: &str = "catalog.db";
/// Directory of the embedded catalog's warehouse, in the data directory.
pub const WAREHOUSE_DIR: &str = "warehouse";

/// An Iceberg catalog and the store of the sinks' commit ledgers.
#[derive(Clone)]
pub struct IcebergCatalog {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// The catalog's raw metadata swap, for commits iceberg's transactions cannot make
    /// (compaction); only the embedded catalog has one.
    swap: Option<MetadataSwap>,
    /// URL of the directory every table's files live under (no trailing slash); `None`
    /// for a REST catalog, which decides that itself.
    warehouse: Option<String>,
    /// The clock that stamps the snapshots runnel builds and the seeded source of data
    /// file tokens and snapshot ids.
    ambient: Ambient,
}

impl fmt::Debug for IcebergCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IcebergCatalog")
            .field("catalog", &self.catalog)
            .field("root", &self.root)
            .finish()
    }
}

impl IcebergCatalog {
    /// Any catalog; ledgers go to `store` under `{root}/sinks/`.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn ObjectStore>,
        root: Path,
        ambient: Ambient,
    ) -> Self {
        IcebergCatalog {
            catalog,
            store,
            root,
            swap: None,
            warehouse: None,
            ambient,
        }
    }

    /// The embedded catalog of the local data directory `dir` (created if missing).
    pub async fn embedded(dir: &FsPath, ambient: Ambient) -> Result<Self> {
        let external =
            |e: std::io::Error| Error::external(format!("data directory {}", dir.display()), e);
        let warehouse = dir.join(WAREHOUSE_DIR);
        std::fs::create_dir_all(&warehouse).map_err(external)?;
        let dir = dir.canonicalize().map_err(external)?;
        let uri = format!("sqlite:{}?mode=rwc", dir.join(CATALOG_DB).display());
        let warehouse = format!("file://{}", dir.join(WAREHOUSE_DIR).display());
        let swap = MetadataSwap::open_sql(&uri, CATALOG_NAME).await?;
        let catalog = SqlCatalogBuilder::default()
            .uri(uri)
            .warehouse_location(warehouse.clone())
            .sql_bind_style(SqlBindStyle::QMark)
            .with_storage_factory(Arc::new(LocalFsStorageFactory))
            .load(CATALOG_NAME, HashMap::new())
            .await
            .map_err(iceberg_error("opening the embedded Iceberg catalog"))?;
        let store = SyncedLocal::open(&dir)
            .map_err(|e| Error::external(format!("data directory {}", dir.display()), e))?;
        Ok(IcebergCatalog {
            swap: Some(swap),
            warehouse: Some(warehouse),
            ..Self::new(Arc::new(catalog), Arc::new(store), Path::from(""), ambient)
        })
    }

    /// The catalog of a data root in an object store (S3): tables, their metadata and
    /// data files, and the ledgers all under `root` of `store`, whose objects are the URLs
    /// under `base_url` (`s3://bucket`); see [`ObjectStoreCatalog`].
    pub fn on_object_store(
        store: Arc<dyn ObjectStore>,
        root: Path,
        base_url: &str,
        ambient: Ambient,
    ) -> Self {
        let catalog = ObjectStoreCatalog::new(store.clone(), &root, base_url);
        IcebergCatalog {
            swap: Some(MetadataSwap::Pointers(catalog.clone())),
            warehouse: Some(catalog.warehouse().to_string()),
            ..Self::new(Arc::new(catalog), store, root, ambient)
        }
    }

    /// An Iceberg REST catalog at `uri` (its tables' files on local disks, `file://`);
    /// ledgers go to `store` under `{root}/sinks/`. Commits, compactions included, go
    /// through the catalog's commit endpoint, so it decides what is current.
    pub async fn rest(
        uri: &str,
        store: Arc<dyn ObjectStore>,
        root: Path,
        ambient: Ambient,
    ) -> Result<Self> {
        let catalog = RestCatalogBuilder::default()
            .with_storage_factory(Arc::new(LocalFsStorageFactory))
            .load(
                "rest",
                HashMap::from([(REST_CATALOG_PROP_URI.to_string(), uri.to_string())]),
            )
            .await
            .map_err(iceberg_error(format!(
                "opening the Iceberg REST catalog {uri}"
            )))?;
        Ok(IcebergCatalog {
            swap: Some(MetadataSwap::Rest(RestCommits::new(uri))),
            ..Self::new(Arc::new(catalog), store, root, ambient)
        })
    }

    /// The Iceberg catalog.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The clock and seeded randomness the catalog's sinks and compactions use.
    pub fn ambient(&self) -> &Ambient {
        &self.ambient
    }

    /// URL of the directory every table's files must live under (see
    /// [`locations`](super::locations)); `None` when the catalog is a REST catalog
    /// elsewhere, which decides that itself.
    pub fn warehouse(&self) -> Option<&str> {
        self.warehouse.as_deref()
    }

    pub(crate) fn metadata_swap(&self) -> Option<&MetadataSwap> {
        self.swap.as_ref()
    }

    /// The identifier of table `name` in [`NAMESPACE`].
    pub fn table_ident(name: &str) -> TableIdent {
        TableIdent::new(NamespaceIdent::new(NAMESPACE.to_string()), name.to_string())
    }

    /// Loads table `name`. A table that does not exist is [`Error::NotFound`] (a user's
    /// doing, such as a drop: restarting a job cannot cure it).
    pub async fn load_table(&self, name: &str) -> Result<Table> {
        self.catalog
            .load_table(&Self::table_ident(name))
            .await
            .map_err(|e| match e.kind() {
                iceberg::ErrorKind::TableNotFound => {
                    Error::NotFound(format!("Iceberg table {name} does not exist (dropped?)"))
                }
                _ => iceberg_error(format!("loading Iceberg table {name}"))(e),
            })
    }

    /// Loads table `name`, or creates it with `schema` (and the namespace with it). A
    /// concurrent creation by another sink is not an error: the winner's table is loaded.
    pub(crate) async fn load_or_create_table(
        &self,
        name: &str,
        schema: iceberg::spec::Schema,
    ) -> Result<(Table, bool)> {
        let ident = Self::table_ident(name);
        let context = || format!("creating Iceberg table {name}");
        let exists = self
            .catalog
            .table_exists(&ident)
            .await
            .map_err(iceberg_error(context()))?;
        if exists {
            return Ok((self.load_table(name).await?, false));
        }
        self.ensure_namespace().await?;
        let creation = TableCreation::builder()
            .name(name.to_string())
            .schema(schema)
            .build();
        match self.catalog.create_table(ident.namespace(), creation).await {
            Ok(table) => Ok((table, true)),
            Err(e) => match self.catalog.table_exists(&ident).await {
                Ok(true) => Ok((self.load_table(name).await?, false)),
                _ => Err(iceberg_error(context())(e)),
            },
        }
    }

    /// Checks, without changing anything, that rows of `schema` can go to table `name`:
    /// every column has an Iceberg type, and an existing table has the same columns. A
    /// sink is checked when it is submitted, so that a misfit is refused then rather than
    /// failing the job it would start.
    pub async fn check_sink(&self, name: &str, schema: &arrow::datatypes::Schema) -> Result<()> {
        table_schema(schema, name)?;
        let exists = self
            .catalog
            .table_exists(&Self::table_ident(name))
            .await
            .map_err(iceberg_error(format!("checking Iceberg table {name}")))?;
        if exists {
            let table = self.load_table(name).await?;
            check_compatible(table.metadata().current_schema(), schema, name)?;
        }
        Ok(())
    }

    async fn ensure_namespace(&self) -> Result<()> {
        let namespace = NamespaceIdent::new(NAMESPACE.to_string());
        let error = iceberg_error(format!("creating Iceberg namespace {NAMESPACE}"));
        match self.catalog.namespace_exists(&namespace).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(error(e)),
        }
        let created = self
            .catalog
            .create_namespace(&namespace, HashMap::new())
            .await;
        match created {
            Err(e) if !matches!(self.catalog.namespace_exists(&namespace).await, Ok(true)) => {
                Err(error(e))
            }
            _ => Ok(()),
        }
    }
}
