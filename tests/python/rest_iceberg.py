"""Reads and then appends to a table through runnel's Iceberg REST catalog with PyIceberg's
RestCatalog, as any engine with a REST client would.

usage: rest_iceberg.py CATALOG_URI TABLE OUT_FILE

Writes every row of TABLE (e.g. `default.hot`) to OUT_FILE as an Arrow IPC file, then
appends one copy of its first row with `auction` set to -1 (a commit through the REST
endpoint); prints one JSON line with the namespaces, the tables, and the snapshot
operations before and after the append.
"""

import json
import sys

import pyarrow as pa
import pyarrow.ipc as ipc
from pyiceberg.catalog.rest import RestCatalog


def main() -> None:
    uri, table_name, out = sys.argv[1:4]
    catalog = RestCatalog("runnel", uri=uri)
    table = catalog.load_table(table_name)
    rows = table.scan().to_arrow()
    with pa.OSFile(out, "wb") as sink:
        with ipc.new_file(sink, rows.schema) as writer:
            writer.write_table(rows)
    before = [s.summary.operation.value for s in table.snapshots()]

    extra = rows.slice(0, 1)
    auction = extra.schema.get_field_index("auction")
    extra = extra.set_column(
        auction, extra.schema.field(auction), pa.array([-1], type=pa.int64())
    )
    table.append(extra)
    table = catalog.load_table(table_name)
    after = [s.summary.operation.value for s in table.snapshots()]
    print(
        json.dumps(
            {
                "namespaces": [list(n) for n in catalog.list_namespaces()],
                "tables": [list(t) for t in catalog.list_tables("default")],
                "before": before,
                "after": after,
            }
        )
    )


if __name__ == "__main__":
    main()
