"""Drives the broker with kafka-python (Debian's python3-kafka); prints one JSON report."""
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

bootstrap = sys.argv[1]
report = {}

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="py-admin")
admin.create_topics([NewTopic("py-topic", num_partitions=2, replication_factor=1,
                              topic_configs={"retention.ms": "86400000"})])
report["topics"] = sorted(t for t in admin.list_topics() if t.startswith("py-"))

for codec in (None, "gzip"):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=codec)
    for i in range(10):
        producer.send("py-topic", key=b"k%d" % i, value=("%s-%d" % (codec, i)).encode(),
                      headers=[("codec", str(codec).encode()), ("i", str(i).encode())],
                      timestamp_ms=1700000000000 + i, partition=i % 2).get(timeout=10)
    producer.close()

consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         consumer_timeout_ms=3000)
partitions = [TopicPartition("py-topic", 0), TopicPartition("py-topic", 1)]
consumer.assign(partitions)
consumer.seek_to_beginning()
records = []
deadline = time.time() + 20
while len(records) < 20 and time.time() < deadline:
    for batch in consumer.poll(timeout_ms=500).values():
        for r in batch:
            records.append({"partition": r.partition, "offset": r.offset, "key": r.key.decode(),
                            "value": r.value.decode(), "timestamp": r.timestamp,
                            "headers": [[k, v.decode()] for k, v in r.headers]})
report["records"] = sorted(records, key=lambda r: (r["partition"], r["offset"]))
report["end_offsets"] = {str(tp.partition): o for tp, o in consumer.end_offsets(partitions).items()}
report["by_time"] = {str(tp.partition): (o.offset if o else None)
                     for tp, o in consumer.offsets_for_times({p: 1700000000005 for p in partitions}).items()}
consumer.close()

admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "py-topic",
                                    configs={"retention.ms": "7200000", "segment.bytes": "1048576"})])
described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "py-topic")])
entries = {}
for response in described:
    for resource in response.resources:
        for entry in resource[4]:
            entries[entry[0]] = entry[1]
report["configs"] = {k: entries.get(k) for k in ("retention.ms", "segment.bytes", "cleanup.policy")}

broker_id = admin.describe_cluster()["brokers"][0]["node_id"]
admin.create_topics([NewTopic("py-assigned", num_partitions=-1, replication_factor=-1,
                              replica_assignments={0: [broker_id], 1: [broker_id], 2: [broker_id]})])
report["assigned"] = sorted([p["partition"], p["leader"] == broker_id]
                            for p in admin.describe_topics(["py-assigned"])[0]["partitions"])
admin.delete_topics(["py-assigned"])

admin.create_partitions({"py-topic": NewPartitions(total_count=4)})
report["partitions_after"] = len(admin.describe_topics(["py-topic"])[0]["partitions"])
admin.delete_topics(["py-topic"])
report["after_delete"] = sorted(t for t in admin.list_topics() if t.startswith("py-"))
admin.close()
print(json.dumps(report))
