import './helpers/promise-with-resolvers.js';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;
const brokers = () => [`127.0.0.1:${server.port}`];

beforeAll(async () => {
  server = await startServer();
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

describe('@platformatic/kafka (flexible versions only)', () => {
  it('creates a topic, produces with gzip and consumes keys, headers and timestamps', async () => {
    const admin = new Admin({ clientId: 'pk-admin', bootstrapBrokers: brokers() });
    try {
      await admin.createTopics({ topics: ['pk-topic'], partitions: 2, replicas: 1 });
      expect(await admin.listTopics()).toContain('pk-topic');
    } finally {
      await admin.close();
    }

    const producer = new Producer({
      clientId: 'pk-producer',
      bootstrapBrokers: brokers(),
      serializers: stringSerializers,
      compression: 'gzip',
    });
    try {
      await producer.send({
        messages: Array.from({ length: 20 }, (_, i) => ({
          topic: 'pk-topic',
          key: `k${i}`,
          value: `v${i}`,
          headers: new Map([['i', String(i)]]),
          timestamp: BigInt(1_700_000_000_000 + i),
          partition: i % 2,
        })),
      });
    } finally {
      await producer.close();
    }

    const consumer = new Consumer({
      groupId: 'pk-group',
      clientId: 'pk-consumer',
      bootstrapBrokers: brokers(),
      deserializers: stringDeserializers,
      maxWaitTime: 500,
    });
    const seen = new Map<string, { value: string; header: string; timestamp: bigint }>();
    try {
      const stream = await consumer.consume({
        topics: ['pk-topic'],
        mode: 'earliest',
        autocommit: true,
        sessionTimeout: 10_000,
      });
      for await (const message of stream) {
        seen.set(message.key, {
          value: message.value,
          header: String(message.headers.get('i')),
          timestamp: message.timestamp,
        });
        if (seen.size === 20) break;
      }
      await stream.close();
    } finally {
      await consumer.close(true);
    }
    for (let i = 0; i < 20; i++) {
      expect(seen.get(`k${i}`)).toEqual({
        value: `v${i}`,
        header: String(i),
        timestamp: BigInt(1_700_000_000_000 + i),
      });
    }
  }, 60_000);
});
