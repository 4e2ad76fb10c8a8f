import { CompressionTypes, Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  server = await startServer();
  kafka = new Kafka({
    brokers: [`127.0.0.1:${server.port}`],
    logLevel: logLevel.NOTHING,
    clientId: 'kafkajs-test',
  });
  admin = kafka.admin();
  await admin.connect();
}, 30_000);

afterAll(async () => {
  await admin?.disconnect();
  await server?.stop();
});

describe('KafkaJS', () => {
  it('round-trips keys, headers and timestamps through a consumer group, gzip and uncompressed', async () => {
    await admin.createTopics({ topics: [{ topic: 'js-round-trip', numPartitions: 3 }] });
    const producer = kafka.producer();
    await producer.connect();
    const messages = Array.from({ length: 30 }, (_, i) => ({
      key: `key-${i}`,
      value: `value-${i}`,
      headers: { index: String(i), kind: 'test' },
      timestamp: String(1_700_000_000_000 + i),
    }));
    await producer.send({ topic: 'js-round-trip', messages: messages.slice(0, 15), acks: -1 });
    await producer.send({
      topic: 'js-round-trip',
      messages: messages.slice(15),
      acks: 1,
      compression: CompressionTypes.GZIP,
    });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: 'js-group', sessionTimeout: 10_000 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'js-round-trip', fromBeginning: true });
    const seen = new Map<string, { value: string; headers: Record<string, string>; timestamp: string }>();
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message }) => {
            seen.set(message.key!.toString(), {
              value: message.value!.toString(),
              headers: Object.fromEntries(
                Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
              ),
              timestamp: message.timestamp,
            });
            if (seen.size === messages.length) resolve();
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    for (const [i, message] of messages.entries()) {
      expect(seen.get(message.key)).toEqual({
        value: message.value,
        headers: { index: String(i), kind: 'test' },
        timestamp: message.timestamp,
      });
    }
  }, 60_000);

  it('runs admin operations: offsets, partitions, configs, delete records, delete topics', async () => {
    await admin.createTopics({
      topics: [
        { topic: 'js-admin', numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] },
      ],
    });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: 'js-admin',
      messages: Array.from({ length: 10 }, (_, i) => ({ value: `m${i}` })),
    });
    await producer.disconnect();

    expect(await admin.fetchTopicOffsets('js-admin')).toEqual([
      expect.objectContaining({ partition: 0, offset: '10', low: '0', high: '10' }),
    ]);
    await admin.deleteTopicRecords({ topic: 'js-admin', partitions: [{ partition: 0, offset: '4' }] });
    expect((await admin.fetchTopicOffsets('js-admin'))[0]!.low).toBe('4');

    await admin.createPartitions({ topicPartitions: [{ topic: 'js-admin', count: 4 }] });
    const metadata = await admin.fetchTopicMetadata({ topics: ['js-admin'] });
    expect(metadata.topics[0]!.partitions).toHaveLength(4);

    const described = await admin.describeConfigs({
      resources: [{ type: 2, name: 'js-admin', configNames: ['retention.ms', 'cleanup.policy'] }],
      includeSynonyms: false,
    });
    const entries = Object.fromEntries(
      described.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]),
    );
    expect(entries).toEqual({ 'retention.ms': '3600000', 'cleanup.policy': 'delete' });

    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        { type: 2, name: 'js-admin', configEntries: [{ name: 'retention.bytes', value: '1048576' }] },
      ],
    });
    const after = await admin.describeConfigs({
      resources: [{ type: 2, name: 'js-admin', configNames: ['retention.ms', 'retention.bytes'] }],
      includeSynonyms: false,
    });
    // AlterConfigs replaces the whole set: retention.ms is back to its default, retention.bytes set.
    expect(
      Object.fromEntries(
        after.resources[0]!.configEntries.map((e) => [e.configName, [e.configValue, e.isDefault]]),
      ),
    ).toEqual({ 'retention.ms': ['604800000', true], 'retention.bytes': ['1048576', false] });

    await expect(
      admin.alterConfigs({
        validateOnly: false,
        resources: [
          { type: 2, name: 'js-admin', configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
        ],
      }),
    ).rejects.toThrow();

    expect(await admin.listTopics()).toContain('js-admin');
    await admin.deleteTopics({ topics: ['js-admin'] });
    expect(await admin.listTopics()).not.toContain('js-admin');
  }, 60_000);
});
