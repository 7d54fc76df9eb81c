"""Reads a runnel results stream with pyarrow, as a client would.

usage: read_results.py URL OUT_FILE [ROWS]

Prints one line per record batch as it arrives (so the caller can see batches arrive
while the job still runs), then writes every row received to OUT_FILE as an Arrow IPC
file. The stream of a running job never ends: with ROWS, the reader stops once it has
that many rows.
"""

import sys
import urllib.request

import pyarrow as pa
import pyarrow.ipc as ipc


def main() -> None:
    url, out = sys.argv[1], sys.argv[2]
    wanted = int(sys.argv[3]) if len(sys.argv) > 3 else None
    with urllib.request.urlopen(url) as response:
        content_type = response.headers.get("Content-Type")
        if content_type != "application/vnd.apache.arrow.stream":
            raise SystemExit(f"unexpected content type {content_type}")
        reader = ipc.open_stream(response)
        batches = []
        rows = 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            print(f"batch {batch.num_rows}", flush=True)
            if wanted is not None and rows >= wanted:
                break
        table = pa.Table.from_batches(batches, schema=reader.schema)
    with pa.OSFile(out, "wb") as sink:
        with ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    print(f"done {table.num_rows}", flush=True)


if __name__ == "__main__":
    main()
