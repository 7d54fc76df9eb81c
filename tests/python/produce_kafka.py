"""Produces records into a Kafka topic with kafka-python, as an outside application would.

usage: produce_kafka.py BOOTSTRAP TOPIC < lines

Each input line is `PARTITION<TAB>VALUE`: VALUE (a JSON text) goes to that partition, in
input order. Waits until the broker has acknowledged every record (acks=all).
"""

import sys

from kafka import KafkaProducer


def main(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=100, batch_size=1024 * 1024
    )
    futures = []
    for line in sys.stdin:
        partition, value = line.rstrip("\n").split("\t", 1)
        futures.append(producer.send(topic, value=value.encode(), partition=int(partition)))
    producer.flush()
    for f in futures:
        f.get(timeout=60)
    producer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
