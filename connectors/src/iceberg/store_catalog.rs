//! An Iceberg catalog kept in an object store, for data roots that are not a local
//! directory (S3): a table is a sequence of pointer objects to its metadata files, and a
//! commit is the create-only write of the next pointer.
//!
//! `{root}/catalog/iceberg/{namespace}/{table}/{version:020}.pointer` holds the location
//! of the table's metadata file at `version`; the current metadata is the highest
//! version. Committing version `n + 1` is a `PutMode::Create` of its pointer, which the
//! store refuses if anyone wrote it first: a compare-and-swap with the same guarantee as
//! the SQL catalog's conditional `UPDATE` (the data root's start-up probe checks that the
//! store honours it). Metadata and data files live under `{warehouse}/{namespace}/{table}`
//! in the same store, through [`ObjectStoreStorage`].
//!
//! Any Iceberg reader opens a table from the location in its newest pointer (PyIceberg's
//! `StaticTable.from_metadata`, Spark's `register_table`, DuckDB's `iceberg_scan`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use iceberg::io::{FileIO, FileIOBuilder};
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result, Runtime,
    TableCommit, TableCreation, TableIdent,
};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::object_io::{ObjectStoreStorage, ObjectStoreStorageFactory};

/// Pointers kept per table besides the newest (older ones are deleted after a commit).
const KEEP_POINTERS: usize = 10;

/// The catalog of tables under one prefix of an object store.
#[derive(Debug, Clone)]
pub struct ObjectStoreCatalog {
    store: Arc<dyn ObjectStore>,
    /// `{root}/catalog/iceberg`.
    pointers: Path,
    /// URL of the warehouse directory, e.g. `s3://bucket/prefix/warehouse`.
    warehouse: String,
    file_io: FileIO,
}

fn store_error(what: String) -> impl FnOnce(object_store::Error) -> Error {
    move |e| Error::new(ErrorKind::Unexpected, what).with_source(e)
}

impl ObjectStoreCatalog {
    /// Tables of `store` under `root`, whose URL is `base_url` + `/` + `root` (the store
    /// holds the objects of URLs under `base_url`, e.g. `s3://bucket`).
    pub fn new(store: Arc<dyn ObjectStore>, root: &Path, base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/');
        let root_url = if root.as_ref().is_empty() {
            base_url.to_string()
        } else {
            format!("{base_url}/{root}")
        };
        let storage = ObjectStoreStorage::new(store.clone(), base_url);
        let file_io = FileIOBuilder::new(Arc::new(ObjectStoreStorageFactory::new(storage))).build();
        ObjectStoreCatalog {
            pointers: root.clone().join("catalog").join("iceberg"),
            warehouse: format!("{root_url}/warehouse"),
            store,
            file_io,
        }
    }

    /// URL of the warehouse directory.
    pub fn warehouse(&self) -> &str {
        &self.warehouse
    }

    fn namespace_dir(&self, namespace: &NamespaceIdent) -> Path {
        namespace
            .iter()
            .fold(self.pointers.clone(), |dir, part| dir.join(part.as_str()))
    }

    fn table_dir(&self, table: &TableIdent) -> Path {
        self.namespace_dir(table.namespace()).join(table.name())
    }

    fn pointer(&self, table: &TableIdent, version: u64) -> Path {
        self.table_dir(table)
            .join(format!("{version:020}.pointer").as_str())
    }

    /// Every object of `table`'s pointer directory.
    async fn pointer_objects(&self, table: &TableIdent) -> Result<Vec<ObjectMeta>> {
        self.store
            .list(Some(&self.table_dir(table)))
            .try_collect()
            .await
            .map_err(store_error(format!("listing the versions of {table}")))
    }

    /// The newest version of `table` and its metadata location, if the table exists.
    async fn current(&self, table: &TableIdent) -> Result<Option<(u64, String)>> {
        let listed = self.pointer_objects(table).await?;
        let newest = listed
            .iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?;
                let version = name.strip_suffix(".pointer")?.parse::<u64>().ok()?;
                Some((version, meta.location.clone()))
            })
            .max_by_key(|(version, _)| *version);
        let Some((version, path)) = newest else {
            return Ok(None);
        };
        let location = self.read_pointer(table, &path).await?;
        Ok(Some((version, location)))
    }

    async fn read_pointer(&self, table: &TableIdent, path: &Path) -> Result<String> {
        let bytes = self
            .store
            .get(path)
            .await
            .map_err(store_error(format!("reading the pointer of {table}")))?
            .bytes()
            .await
            .map_err(store_error(format!("reading the pointer of {table}")))?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            Error::new(ErrorKind::DataInvalid, format!("pointer of {table}")).with_source(e)
        })
    }

    /// Makes `location` version `version` of `table`; `false` when another writer took
    /// that version first. A create whose reply was lost is recognized by its content.
    pub(crate) async fn publish(
        &self,
        table: &TableIdent,
        version: u64,
        location: &str,
    ) -> Result<bool> {
        let path = self.pointer(table, version);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(location.as_bytes().to_vec());
        match self.store.put_opts(&path, payload, options).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Ok(self.read_pointer(table, &path).await? == location);
            }
            Err(e) => return Err(store_error(format!("committing {table}"))(e)),
        }
        if let Some(old) = version.checked_sub(KEEP_POINTERS as u64 + 1) {
            // Best effort: readers only look at the newest pointer.
            let _ = self.store.delete(&self.pointer(table, old)).await;
        }
        Ok(true)
    }

    /// Swaps `table` from metadata `expected` to `new` if `expected` is still current.
    pub(crate) async fn swap(&self, table: &TableIdent, expected: &str, new: &str) -> Result<bool> {
        match self.current(table).await? {
            Some((version, current)) if current == expected => {
                self.publish(table, version + 1, new).await
            }
            _ => Ok(false),
        }
    }

    fn table(&self, ident: TableIdent, location: String, metadata: TableMetadata) -> Result<Table> {
        Table::builder()
            .file_io(self.file_io.clone())
            .metadata_location(location)
            .metadata(metadata)
            .identifier(ident)
            .runtime(Runtime::current())
            .build()
    }

    fn no_such_table(table: &TableIdent) -> Error {
        Error::new(ErrorKind::TableNotFound, format!("no table {table}"))
    }
}

#[async_trait]
impl Catalog for ObjectStoreCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        if parent.is_some() {
            return Ok(Vec::new());
        }
        let listed = self
            .store
            .list_with_delimiter(Some(&self.pointers))
            .await
            .map_err(store_error("listing namespaces".into()))?;
        listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .map(|name| NamespaceIdent::new(name.to_string()))
            .map(Ok)
            .collect()
    }

    /// Namespaces have no object of their own: one exists once it holds a table, and
    /// creating one always succeeds.
    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        Ok(Namespace::with_properties(namespace.clone(), properties))
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        Ok(Namespace::new(namespace.clone()))
    }

    async fn namespace_exists(&self, _namespace: &NamespaceIdent) -> Result<bool> {
        Ok(true)
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        _properties: HashMap<String, String>,
    ) -> Result<()> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!("namespace {namespace:?} has no properties in an object-store catalog"),
        ))
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!("namespace {namespace:?}: drop its tables instead"),
        ))
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        let dir = self.namespace_dir(namespace);
        let listed = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(store_error(format!("listing tables of {namespace:?}")))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .map(|name| TableIdent::new(namespace.clone(), name.to_string()))
            .collect())
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        let location = creation.location.clone().unwrap_or_else(|| {
            format!(
                "{}/{}/{}",
                self.warehouse,
                namespace.join("/"),
                creation.name
            )
        });
        let creation = TableCreation {
            location: Some(location.clone()),
            ..creation
        };
        let metadata = TableMetadataBuilder::from_table_creation(creation)?
            .build()?
            .metadata;
        let metadata_location = MetadataLocation::new_with_metadata(location, &metadata);
        metadata.write_to(&self.file_io, &metadata_location).await?;
        let metadata_location = metadata_location.to_string();
        if !self.publish(&ident, 0, &metadata_location).await? {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {ident} already exists"),
            ));
        }
        self.table(ident, metadata_location, metadata)
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        let (_, location) = self
            .current(table)
            .await?
            .ok_or_else(|| Self::no_such_table(table))?;
        let metadata = TableMetadata::read_from(&self.file_io, &location).await?;
        self.table(table.clone(), location, metadata)
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        let listed = self.pointer_objects(table).await?;
        if listed.is_empty() {
            return Err(Self::no_such_table(table));
        }
        for meta in listed {
            self.store
                .delete(&meta.location)
                .await
                .map_err(store_error(format!("dropping {table}")))?;
        }
        Ok(())
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        let loaded = self.load_table(table).await?;
        self.drop_table(table).await?;
        iceberg::drop_table_data(&loaded).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        Ok(self.current(table).await?.is_some())
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!("renaming {src} to {dest} is not supported by an object-store catalog"),
        ))
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        let metadata = TableMetadata::read_from(&self.file_io, &metadata_location).await?;
        if !self.publish(table, 0, &metadata_location).await? {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {table} already exists"),
            ));
        }
        self.table(table.clone(), metadata_location, metadata)
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        let ident = commit.identifier().clone();
        let (version, base) = self
            .current(&ident)
            .await?
            .ok_or_else(|| Self::no_such_table(&ident))?;
        let metadata = TableMetadata::read_from(&self.file_io, &base).await?;
        let current = self.table(ident.clone(), base, metadata)?;
        let staged = commit.apply(current)?;
        let location = staged.metadata_location_result()?.to_string();
        staged
            .metadata()
            .write_to(&self.file_io, &MetadataLocation::from_str(&location)?)
            .await?;
        if !self.publish(&ident, version + 1, &location).await? {
            return Err(Error::new(
                ErrorKind::CatalogCommitConflicts,
                format!("commit conflicted for table {ident}"),
            )
            .with_retryable(true));
        }
        Ok(staged)
    }
}
