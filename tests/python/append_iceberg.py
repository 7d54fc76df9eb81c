"""Appends rows to an Iceberg table of runnel's embedded catalog with PyIceberg, as
another writer of the same table would.

usage: append_iceberg.py DATA_DIR CATALOG_NAME TABLE IN_FILE

Opens the SQL catalog on DATA_DIR/catalog.db and appends every row of the Arrow IPC file
IN_FILE to TABLE (e.g. `default.out`) as one snapshot; prints that snapshot's id and
summary as one JSON line.
"""

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
from pyiceberg.catalog.sql import SqlCatalog


def main() -> None:
    data_dir, catalog_name, table_name, in_file = sys.argv[1:5]
    data_dir = Path(data_dir).resolve()
    catalog = SqlCatalog(
        catalog_name,
        uri=f"sqlite:///{data_dir / 'catalog.db'}",
        warehouse=(data_dir / "warehouse").as_uri(),
    )
    table = catalog.load_table(table_name)
    with pa.OSFile(in_file, "rb") as source:
        rows = ipc.open_file(source).read_all()
    table.append(rows)
    snapshot = table.current_snapshot()
    summary = {"operation": snapshot.summary.operation.value}
    summary.update(snapshot.summary.additional_properties)
    print(json.dumps({"snapshot_id": snapshot.snapshot_id, "summary": summary}))


if __name__ == "__main__":
    main()
