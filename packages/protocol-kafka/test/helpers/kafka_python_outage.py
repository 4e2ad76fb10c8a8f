"""Consumes a topic's partition 0 with kafka-python through a storage outage; prints one JSON report.

argv: bootstrap, topic, records expected, "consume" or "produce" (produce sends that many records
with acks=all and waits for each).
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap, topic, expected, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
report = {"records": [], "error": None}
try:
    if mode == "consume":
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        deadline = time.time() + 30
        while len(report["records"]) < expected and time.time() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                report["records"].extend(r.value.decode() for r in batch)
        consumer.close()
    else:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=100,
                                 retry_backoff_ms=100, request_timeout_ms=30000)
        for i in range(expected):
            producer.send(topic, value=("py-%d" % i).encode(), partition=0).get(timeout=30)
            report["records"].append("py-%d" % i)
        producer.close()
except Exception as error:  # the report says which error ended the client
    report["error"] = type(error).__name__
print(json.dumps(report))
