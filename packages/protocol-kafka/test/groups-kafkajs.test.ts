import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Member, waitFor } from './helpers/group-members.js';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  server = await startServer({
    kafka: ['group_min_session_timeout_ms = 1000', 'group_initial_rebalance_delay_ms = 500'],
  });
  kafka = new Kafka({
    brokers: [`127.0.0.1:${server.port}`],
    logLevel: logLevel.NOTHING,
    clientId: 'groups-test',
  });
  admin = kafka.admin();
  await admin.connect();
}, 30_000);

afterAll(async () => {
  await admin?.disconnect();
  await server?.stop();
});

describe('consumer groups with KafkaJS', () => {
  it('spreads partitions over three members as they join, leave and crash, consuming each record once', async () => {
    const topic = 'group-rebalance';
    const group = 'rebalancing-group';
    const partitions = [0, 1, 2, 3, 4, 5];
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions.length }] });
    const producer = kafka.producer();
    await producer.connect();
    const produced: string[] = [];
    const produce = async (phase: string) => {
      const messages = Array.from({ length: 60 }, (_, i) => ({
        key: `${phase}-${i}`,
        value: `${phase}-${i}`,
      }));
      await producer.send({ topic, messages, acks: -1 });
      produced.push(...messages.map((m) => m.value));
    };
    const members: Member[] = [];
    const live = new Set<Member>();
    const start = (name: string) => {
      const member = new Member(`127.0.0.1:${server.port}`, topic, group, name);
      members.push(member);
      live.add(member);
      return member;
    };
    const consumedAll = () => {
      const seen = new Set(members.flatMap((m) => m.values()));
      return produced.every((v) => seen.has(v));
    };
    /** Every live member has a part of a disjoint cover of the partitions, and the group is Stable. */
    const balanced = async () => {
      const assignments = [...live].map((m) => m.assignment());
      if (assignments.some((a) => a === null || a.length === 0)) return false;
      const all = assignments.flatMap((a) => a!).sort((x, y) => x - y);
      if (JSON.stringify(all) !== JSON.stringify(partitions)) return false;
      const { groups } = await admin.describeGroups([group]);
      return groups[0]!.state === 'Stable' && groups[0]!.members.length === live.size;
    };

    try {
      const a = start('member-a');
      await waitFor('the first member to own every partition', balanced);
      await produce('one');
      await waitFor('phase one consumed', consumedAll);

      const b = start('member-b');
      const c = start('member-c');
      await waitFor('three members sharing the partitions', balanced);
      expect([a, b, c].map((m) => m.assignment()!.length)).toEqual([2, 2, 2]);
      await produce('two');
      await waitFor('phase two consumed', consumedAll);

      // b leaves cleanly: its partitions move to the others at once.
      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
      live.delete(b);
      await waitFor('two members after a leave', balanced);
      await produce('three');
      await waitFor('phase three consumed', consumedAll);

      // c crashes: the coordinator notices when its session times out.
      c.child.kill('SIGKILL');
      await c.exited;
      live.delete(c);
      await waitFor('one member after a crash', balanced);
      expect(a.assignment()).toEqual(partitions);
      await produce('four');
      await waitFor('phase four consumed', consumedAll);

      const consumed = members.flatMap((m) => m.values()).sort();
      expect(consumed).toEqual([...produced].sort());
      expect(b.values().length).toBeGreaterThan(0);
      expect(c.values().length).toBeGreaterThan(0);

      // Committed offsets reach the end of every partition.
      const ends = await admin.fetchTopicOffsets(topic);
      const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const byPartition = new Map(committed[0]!.partitions.map((p) => [p.partition, p.offset]));
      for (const end of ends) expect(byPartition.get(end.partition)).toBe(end.high);
      await server.waitForMetric(/^robustmq_kafka_group_rebalances_total(\{[^}]*\})? ([4-9]|\d{2,})$/);
    } finally {
      await producer.disconnect();
      for (const member of live) member.child.kill('SIGKILL');
      await Promise.all(members.map((m) => m.exited));
    }
  }, 120_000);

  it('lists, describes and deletes groups, and resets offsets while the group is empty', async () => {
    const topic = 'group-admin';
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({ value: `v${i}`, partition: i % 2 })),
    });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: 'admin-group', sessionTimeout: 6000 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let count = 0;
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: () => {
            if (++count === 10) resolve();
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
    const { groups: listed } = await admin.listGroups();
    expect(listed).toContainEqual({ groupId: 'admin-group', protocolType: 'consumer' });
    const { groups } = await admin.describeGroups(['admin-group']);
    expect(groups[0]).toMatchObject({
      groupId: 'admin-group',
      state: 'Stable',
      protocolType: 'consumer',
      protocol: 'RoundRobinAssigner',
    });
    expect(groups[0]!.members[0]!.clientId).toBe('groups-test');
    await expect(admin.deleteGroups(['admin-group'])).rejects.toThrow();

    await consumer.disconnect();
    const [committed] = await admin.fetchOffsets({ groupId: 'admin-group', topics: [topic] });
    expect(committed!.partitions.map((p) => [p.partition, p.offset])).toEqual([
      [0, '5'],
      [1, '5'],
    ]);
    await admin.resetOffsets({ groupId: 'admin-group', topic, earliest: true });
    const reset = await admin.fetchOffsets({ groupId: 'admin-group', topics: [topic] });
    // KafkaJS commits -2, "earliest", which its consumers resolve when they start.
    expect(reset[0]!.partitions.map((p) => p.offset)).toEqual(['-2', '-2']);
    await admin.deleteGroups(['admin-group']);
    const after = await admin.listGroups();
    expect(after.groups.map((g) => g.groupId)).not.toContain('admin-group');
  }, 60_000);
});
