// Kafka traffic that must survive kills: an idempotent producer with acks=all, read back at the
// end by a new consumer group from the beginning.
import { Kafka, logLevel } from 'kafkajs';
import { PORTS } from './cluster.mjs';
import { book } from './book.mjs';

const TOPIC = 'crash-k';
const READ_BACK_MS = 60_000;

export async function kafkaTraffic({ seed, trace }) {
  const kafka = new Kafka({
    clientId: 'crash-test',
    brokers: PORTS.kafka.map((port) => `127.0.0.1:${port}`),
    logLevel: logLevel.NOTHING,
    retry: { retries: 1000, initialRetryTime: 200, maxRetryTime: 1000 },
    connectionTimeout: 3000,
    requestTimeout: 10_000,
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }] });
  await admin.disconnect();
  const records = book();
  const batches = [];
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let running = true;
  const producing = (async () => {
    while (running) {
      const messages = Array.from({ length: 20 }, (_, i) => ({ key: String(i % 7), value: records.next() }));
      try {
        const answer = await producer.send({ topic: TOPIC, acks: -1, messages });
        for (const { value } of messages) records.acked.add(value);
        batches.push({ values: messages.map((m) => m.value), answer });
      } catch (error) {
        trace(`kafka send failed: ${error.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await producer.disconnect().catch(() => {});
  })();

  return {
    async stop() {
      running = false;
      await producing;
    },
    async report() {
      const where = new Map();
      const consumer = kafka.consumer({ groupId: `crash-check-${seed}-${Date.now()}` });
      await consumer.connect();
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          const value = message.value.toString();
          records.got(value);
          where.set(value, `${partition}@${message.offset}`);
        },
      });
      const until = Date.now() + READ_BACK_MS;
      while (Date.now() < until && records.missing().length > 0) {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      await consumer.disconnect();
      const report = records.report();
      const missing = new Set(records.missing());
      if (missing.size > 0) {
        // What a loss is read with: the produce answers of the batches that held the records,
        // and where the records next to them were read.
        report.batches = batches
          .filter((batch) => batch.values.some((value) => missing.has(value)))
          .slice(0, 5)
          .map((batch) => ({
            values: `${batch.values[0]}-${batch.values.at(-1)}`,
            answer: batch.answer,
            before: where.get(String(Number(batch.values[0]) - 1)),
            after: where.get(String(Number(batch.values.at(-1)) + 1)),
          }));
      }
      return report;
    },
  };
}
