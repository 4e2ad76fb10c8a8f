// One KafkaJS consumer-group member in its own process, so a test can kill it with SIGKILL.
// Usage: node group-member.mjs <broker> <topic> <group> <name> [retries]
// KafkaJS keeps heartbeating a coordinator that died until its retries run out, then restarts the
// consumer, which looks the coordinator up again: fewer retries make that sooner.
// Prints JSON lines: {event:"joined", generation, partitions} after each rebalance and
// {event:"message", partition, offset, value} for each record, once its offset is committed.
// SIGTERM leaves the group cleanly and exits 0.
import { Kafka, logLevel } from 'kafkajs';

const [broker, topic, group, name, retries = '20'] = process.argv.slice(2);
const kafka = new Kafka({ brokers: [broker], clientId: name, logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({
  groupId: group,
  // Heartbeats share the connection with fetches, which wait up to maxWaitTimeInMs.
  sessionTimeout: 5000,
  heartbeatInterval: 300,
  maxWaitTimeInMs: 300,
  rebalanceTimeout: 10000,
  retry: { retries: Number(retries), initialRetryTime: 100, maxRetryTime: 1000 },
});
const print = (line) => process.stdout.write(JSON.stringify({ name, ...line }) + '\n');

consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
  print({ event: 'joined', memberId: payload.memberId, partitions: payload.memberAssignment[topic] ?? [] });
});

await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  autoCommit: false,
  eachMessage: async ({ partition, message }) => {
    await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
    print({ event: 'message', partition, offset: Number(message.offset), value: message.value.toString() });
  },
});

process.on('SIGTERM', () => {
  consumer
    .disconnect()
    .then(() => process.exit(0))
    .catch(() => process.exit(1));
});
