import './helpers/promise-with-resolvers.js';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;
const brokers = () => [`127.0.0.1:${server.port}`];

beforeAll(async () => {
  server = await startServer({ kafka: ['group_initial_rebalance_delay_ms = 300'] });
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

describe('@platformatic/kafka groups and idempotent producer (the newest API versions)', () => {
  it('shares partitions between two members, commits, and lists and deletes the group', async () => {
    const topic = 'pk-group-topic';
    const group = 'pk-two-members';
    const admin = new Admin({ clientId: 'pk-admin', bootstrapBrokers: brokers() });
    const producer = new Producer({
      clientId: 'pk-idempotent',
      bootstrapBrokers: brokers(),
      serializers: stringSerializers,
      idempotent: true,
    });
    const members = [0, 1].map(
      (i) =>
        new Consumer({
          groupId: group,
          clientId: `pk-member-${i}`,
          bootstrapBrokers: brokers(),
          deserializers: stringDeserializers,
          maxWaitTime: 200,
          sessionTimeout: 10_000,
          heartbeatInterval: 500,
        }),
    );
    try {
      await admin.createTopics({ topics: [topic], partitions: 4, replicas: 1 });
      const values = Array.from({ length: 40 }, (_, i) => `value-${i}`);

      const seen: string[][] = [[], []];
      const streams = await Promise.all(
        members.map((member) => member.consume({ topics: [topic], mode: 'earliest', autocommit: false })),
      );
      // Both members are in the group once consume() resolves: produce only now, so no partition moves later.
      await producer.send({
        messages: values.map((value, i) => ({ topic, key: `k${i}`, value, partition: i % 4 })),
      });
      const commits: Promise<unknown>[] = [];
      await new Promise<void>((resolve) => {
        streams.forEach((stream, i) => {
          stream.on('data', (message) => {
            seen[i]!.push(message.value);
            commits.push(Promise.resolve(message.commit()));
            if (seen[0]!.length + seen[1]!.length === values.length) resolve();
          });
        });
      });
      await Promise.all(commits);
      await Promise.all(streams.map((s) => s.close()));
      expect([...seen[0]!, ...seen[1]!].sort()).toEqual([...values].sort());
      // Four partitions, two members: two partitions (twenty records) each.
      expect(seen.map((s) => s.length)).toEqual([20, 20]);

      const groups = await admin.listGroups();
      expect(groups.get(group)).toMatchObject({ id: group, protocolType: 'consumer' });
      const described = (await admin.describeGroups({ groups: [group] })).get(group);
      expect(described!.members.size).toBe(2);

      for (const member of members) await member.close(true);
      const kafka = new Kafka({ brokers: brokers(), logLevel: logLevel.NOTHING });
      const kafkaAdmin = kafka.admin();
      await kafkaAdmin.connect();
      const [committed] = await kafkaAdmin.fetchOffsets({ groupId: group, topics: [topic] });
      await kafkaAdmin.disconnect();
      expect(committed!.partitions.map((p) => [p.partition, p.offset]).sort()).toEqual([
        [0, '10'],
        [1, '10'],
        [2, '10'],
        [3, '10'],
      ]);
      await admin.deleteGroups({ groups: [group] });
      expect((await admin.listGroups()).has(group)).toBe(false);
    } finally {
      for (const member of members) await member.close(true).catch(() => {});
      await producer.close();
      await admin.close();
    }
  }, 60_000);
});
