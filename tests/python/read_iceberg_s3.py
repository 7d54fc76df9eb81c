"""Reads an Iceberg table in S3 from its metadata file with PyIceberg, as a user of
another engine would (no catalog: the metadata location is all it needs).

usage: read_iceberg_s3.py METADATA_LOCATION S3_ENDPOINT OUT_FILE

Scans the table into Arrow and writes every row to OUT_FILE as an Arrow IPC file; prints
one JSON line with the operation and summary properties of each snapshot.
"""

import json
import sys

import pyarrow as pa
import pyarrow.ipc as ipc
from pyiceberg.table import StaticTable


def main() -> None:
    location, endpoint, out = sys.argv[1:4]
    table = StaticTable.from_metadata(
        location,
        properties={
            "s3.endpoint": endpoint,
            "s3.access-key-id": "test",
            "s3.secret-access-key": "test",
            "s3.region": "us-east-1",
        },
    )
    rows = table.scan().to_arrow()
    with pa.OSFile(out, "wb") as sink:
        with ipc.new_file(sink, rows.schema) as writer:
            writer.write_table(rows)
    snapshots = [
        {"operation": s.summary.operation.value, **s.summary.additional_properties}
        for s in table.snapshots()
    ]
    print(json.dumps({"format_version": table.format_version, "snapshots": snapshots}))


if __name__ == "__main__":
    main()
