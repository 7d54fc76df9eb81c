//! Another writer evolves the sink's table: an added optional column lets the sink start
//! and keep writing (nulls there); a change its rows cannot fit is a clear error.

use iceberg::spec::{NestedField, PrimitiveType, Schema as IcebergSchema, Type};
use iceberg::{TableRequirement, TableUpdate};

use super::*;

/// Makes the table's current schema its columns plus `extra`, as another engine would.
async fn evolve(dir: &TempDir, extra: NestedField) {
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let table = catalog.load_table("out").await.unwrap();
    let current = table.metadata().current_schema();
    let mut fields: Vec<_> = current.as_struct().fields().to_vec();
    fields.push(extra.into());
    let schema = IcebergSchema::builder()
        .with_schema_id(current.schema_id() + 1)
        .with_fields(fields)
        .build()
        .unwrap();
    let updates = vec![
        TableUpdate::AddSchema { schema },
        TableUpdate::SetCurrentSchema { schema_id: -1 },
    ];
    let requirements: Vec<TableRequirement> = Vec::new();
    let ident = IcebergCatalog::table_ident("out");
    let done = commit_raw(&catalog, &ident, requirements, updates)
        .await
        .unwrap();
    assert!(matches!(done, RawCommit::Committed(_)), "{done:?}");
}

#[tokio::test]
async fn an_added_optional_column_is_written_as_nulls_and_a_required_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = sink(&dir, "job.sink").await;
    let one = vec![stage(&first, 0, 1, vec![rows(0..2)]).await];
    first.commit(1, 0, one).await.unwrap();
    let note = NestedField::optional(3, "note", Type::Primitive(PrimitiveType::String));
    evolve(&dir, note).await;

    let restarted = sink(&dir, "job.sink").await;
    let two = vec![stage(&restarted, 0, 2, vec![rows(2..5)]).await];
    restarted.commit(2, 0, two).await.unwrap();
    let table = restarted.table().await.unwrap();
    let batches = read_table(&table).await.unwrap();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 5);
    for batch in &batches {
        let note = batch.column_by_name("note").expect("the added column");
        assert_eq!(note.null_count(), batch.num_rows());
    }

    let flag = NestedField::required(4, "flag", Type::Primitive(PrimitiveType::Boolean));
    evolve(&dir, flag).await;
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let error = IcebergSink::new(catalog, "out", "job.sink", schema())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Plan(m) if m.contains("flag") && m.contains("out")),
        "{error}"
    );
}
