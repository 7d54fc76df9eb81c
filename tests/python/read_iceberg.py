"""Reads an Iceberg table of runnel's embedded catalog with PyIceberg, as a user would.

usage: read_iceberg.py DATA_DIR CATALOG_NAME TABLE OUT_FILE

Opens the SQL catalog on DATA_DIR/catalog.db, scans TABLE (e.g. `default.bids`) into
Arrow and writes every row to OUT_FILE as an Arrow IPC file; prints one JSON line with
the summary properties of each snapshot the table holds.
"""

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
from pyiceberg.catalog.sql import SqlCatalog


def main() -> None:
    data_dir, catalog_name, table_name, out = sys.argv[1:5]
    data_dir = Path(data_dir).resolve()
    catalog = SqlCatalog(
        catalog_name,
        uri=f"sqlite:///{data_dir / 'catalog.db'}",
        warehouse=(data_dir / "warehouse").as_uri(),
    )
    table = catalog.load_table(table_name)
    rows = table.scan().to_arrow()
    with pa.OSFile(out, "wb") as sink:
        with ipc.new_file(sink, rows.schema) as writer:
            writer.write_table(rows)
    summaries = [dict(s.summary.additional_properties) for s in table.snapshots()]
    print(json.dumps({"format_version": table.format_version, "snapshots": summaries}))


if __name__ == "__main__":
    main()
