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

  it("tells the producer each partition's log start offset with its answer", async () => {
    const topic = 'js-log-start';
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const producer = kafka.producer();
    await producer.connect();
    try {
      const send = async (value: string) =>
        (await producer.send({ topic, acks: -1, messages: [{ value }] }))[0]!;
      expect(await send('first')).toMatchObject({ baseOffset: '0', logStartOffset: '0' });
      for (let i = 0; i < 4; i++) await send(`more-${i}`);
      // Also what the admin client finds the partition's leader by, for deleteTopicRecords.
      expect((await admin.fetchTopicOffsets(topic))[0]).toMatchObject({ low: '0', high: '5' });
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
      expect(await send('after')).toMatchObject({ baseOffset: '5', logStartOffset: '3' });
    } finally {
      await producer.disconnect();
    }
  });

  it('consumes with maxBytesPerPartition 0: each fetch brings a whole batch, as from Kafka', async () => {
    const topic = 'js-zero-partition-bytes';
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const producer = kafka.producer();
    await producer.connect();
    const values = Array.from({ length: 5 }, (_, i) => `batch-${i}`);
    for (const value of values) await producer.send({ topic, acks: -1, messages: [{ value }] });
    await producer.disconnect();
    const consumer = kafka.consumer({
      groupId: `${topic}-reader`,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 0,
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: string[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`consumed only ${seen.length} records`)), 10_000);
        consumer
          .run({
            eachMessage: ({ message }) => {
              seen.push(message.value!.toString());
              if (seen.length === values.length) {
                clearTimeout(timer);
                resolve();
              }
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    expect(seen).toEqual(values);
  }, 30_000);
});

describe('topic configs that act on produced batches (KafkaJS)', () => {
  const twentyTwenty = String(Date.UTC(2020, 0, 1));

  /** The first record of a partition as a KafkaJS consumer sees it. */
  async function firstMessage(topic: string): Promise<{ timestamp: string; value: string }> {
    const consumer = kafka.consumer({ groupId: `${topic}-reader`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    try {
      return await new Promise((resolve, reject) => {
        consumer
          .run({
            eachMessage: ({ message }) => {
              resolve({ timestamp: message.timestamp, value: message.value!.toString() });
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
  }

  it('refuses topics over the partition limit with INVALID_PARTITIONS, validate-only included', async () => {
    const limit = 10_000;
    for (const validateOnly of [true, false]) {
      const creating = admin.createTopics({
        validateOnly,
        topics: [{ topic: 'js-too-many', numPartitions: limit + 1 }],
      });
      await expect(creating).rejects.toMatchObject({
        errors: [expect.objectContaining({ type: 'INVALID_PARTITIONS' })],
      });
    }
    expect(await admin.listTopics()).not.toContain('js-too-many');
    await admin.createTopics({ topics: [{ topic: 'js-growing' }] });
    await expect(
      admin.createPartitions({ topicPartitions: [{ topic: 'js-growing', count: limit + 1 }] }),
    ).rejects.toMatchObject({ type: 'INVALID_PARTITIONS' });
    expect((await admin.fetchTopicMetadata({ topics: ['js-growing'] })).topics[0]!.partitions).toHaveLength(
      1,
    );
  });

  it('creates a topic from a replica assignment, with one partition per assignment', async () => {
    const topic = 'js-assigned';
    const { nodeId } = (await admin.describeCluster()).brokers[0]!;
    const replicaAssignment = [0, 1, 2].map((partition) => ({ partition, replicas: [nodeId] }));
    expect(await admin.createTopics({ topics: [{ topic, replicaAssignment }] })).toBe(true);
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    expect(metadata!.partitions.map((p) => [p.partitionId, p.leader]).sort()).toEqual([
      [0, nodeId],
      [1, nodeId],
      [2, nodeId],
    ]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [0, 1, 2].map((partition) => ({ partition, value: `to-${partition}` })),
    });
    await producer.disconnect();
    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets.map((p) => [p.partition, p.high]).sort()).toEqual([
      [0, '1'],
      [1, '1'],
      [2, '1'],
    ]);
  });

  it('adds partitions from a replica assignment, one per new partition, checked as Kafka checks it', async () => {
    const topic = 'js-grown-assigned';
    const { nodeId } = (await admin.describeCluster()).brokers[0]!;
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const grow = (count: number, assignments: number[][]) =>
      admin.createPartitions({ topicPartitions: [{ topic, count, assignments }] });
    await expect(grow(4, [[nodeId], [nodeId]])).rejects.toMatchObject({ type: 'INVALID_REPLICA_ASSIGNMENT' });
    await expect(grow(2, [[nodeId + 100]])).rejects.toMatchObject({ type: 'INVALID_REPLICA_ASSIGNMENT' });
    await grow(3, [[nodeId], [nodeId]]);
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    expect(metadata!.partitions.map((p) => [p.partitionId, p.leader]).sort()).toEqual([
      [0, nodeId],
      [1, nodeId],
      [2, nodeId],
    ]);
  });

  it('stamps batches with the append time under message.timestamp.type=LogAppendTime', async () => {
    const topic = 'js-log-append-time';
    await admin.createTopics({
      topics: [{ topic, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }],
    });
    const producer = kafka.producer();
    await producer.connect();
    const before = Date.now();
    const [sent] = await producer.send({
      topic,
      acks: -1,
      messages: [{ value: 'stamped', timestamp: twentyTwenty }],
    });
    const after = Date.now();
    await producer.disconnect();
    const appended = Number(sent!.logAppendTime);
    expect(appended).toBeGreaterThanOrEqual(before);
    expect(appended).toBeLessThanOrEqual(after);
    expect(await firstMessage(topic)).toEqual({ timestamp: String(appended), value: 'stamped' });
  }, 30_000);

  it('refuses timestamps beyond message.timestamp.before.max.ms with INVALID_TIMESTAMP', async () => {
    const topic = 'js-timestamp-bounds';
    await admin.createTopics({
      topics: [{ topic, configEntries: [{ name: 'message.timestamp.before.max.ms', value: '3600000' }] }],
    });
    const producer = kafka.producer({ retry: { retries: 0 } });
    await producer.connect();
    try {
      await expect(
        producer.send({ topic, messages: [{ value: 'too old', timestamp: twentyTwenty }] }),
      ).rejects.toMatchObject({ type: 'INVALID_TIMESTAMP' });
      await producer.send({ topic, messages: [{ value: 'recent', timestamp: String(Date.now() - 60_000) }] });
    } finally {
      await producer.disconnect();
    }
    expect((await firstMessage(topic)).value).toBe('recent');
  }, 30_000);

  it('answers acks=all with NOT_ENOUGH_REPLICAS when min.insync.replicas is above the replicas', async () => {
    const topic = 'js-min-insync';
    await admin.createTopics({
      topics: [{ topic, configEntries: [{ name: 'min.insync.replicas', value: '2' }] }],
    });
    const producer = kafka.producer({ retry: { retries: 0 } });
    await producer.connect();
    try {
      await expect(
        producer.send({ topic, acks: -1, messages: [{ value: 'refused' }] }),
      ).rejects.toMatchObject({
        // A retriable error: KafkaJS gives up after its retries and names it as the cause.
        cause: { type: 'NOT_ENOUGH_REPLICAS' },
      });
      await producer.send({ topic, acks: 1, messages: [{ value: 'leader only' }] });
    } finally {
      await producer.disconnect();
    }
    expect((await firstMessage(topic)).value).toBe('leader only');
  }, 30_000);
});
