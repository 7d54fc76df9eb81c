"""Prints every record of a Kafka topic as one JSON line (partition, offset, key, value,
headers), read with kafka-python from the start of each partition to its end."""

import json
import sys

from kafka import KafkaConsumer, TopicPartition


def main(bootstrap: str, topic: str) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20000,
        max_partition_fetch_bytes=64 * 1024 * 1024,
        fetch_max_bytes=128 * 1024 * 1024,
    )
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    remaining = {tp.partition for tp in partitions if ends[tp] > 0}
    last = {tp.partition: ends[tp] - 1 for tp in partitions}
    for r in consumer:
        print(json.dumps({
            "partition": r.partition,
            "offset": r.offset,
            "key": r.key.decode() if r.key is not None else None,
            "value": json.loads(r.value),
            "headers": {k: v.decode() for k, v in r.headers},
        }))
        if r.offset >= last[r.partition]:
            remaining.discard(r.partition)
        if not remaining:
            break
    if remaining:
        raise SystemExit(
            f"partitions {sorted(remaining)} ended early: ends {ends}, "
            f"positions {[consumer.position(tp) for tp in partitions]}"
        )
    consumer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
