import { rmSync } from 'node:fs';
import { AssignerProtocol, Kafka, logLevel, type Admin, type Consumer } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { startServer, type KafkaServer } from './helpers/server.js';

const FAST_GROUPS = ['group_initial_rebalance_delay_ms = 0'];

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The group as DescribeGroups shows it: state, and each member's id with its assigned partitions. */
async function describeGroup(admin: Admin, groupId: string, topic: string) {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0]!;
  const members = group.members
    .map((m) => ({
      memberId: m.memberId,
      partitions: [
        ...(AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[topic] ?? []),
      ],
    }))
    .sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
  return { state: group.state, members };
}

describe('KafkaJS consumer groups across a broker restart', () => {
  it.each(['SIGTERM', 'SIGKILL'] as const)(
    'keeps the members committing after a %s restart, each record consumed once',
    async (signal) => {
      const topic = `restart-${signal.toLowerCase()}`;
      const groupId = `restart-group-${signal.toLowerCase()}`;
      let server: KafkaServer = await startServer({ kafka: FAST_GROUPS });
      const { dir, port } = server;
      const kafka = new Kafka({
        brokers: [`127.0.0.1:${port}`],
        clientId: 'restart-test',
        logLevel: logLevel.NOTHING,
        // Enough retries to ride out the seconds the broker is away.
        retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
      });
      const producer = kafka.producer();
      const consumers: Consumer[] = [];
      let admin = kafka.admin();
      try {
        await admin.connect();
        await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] });
        await producer.connect();

        const timesSeen = new Map<string, number>();
        const crashes: string[] = [];
        const joinedAs: string[][] = [[], []];
        const heartbeats = [0, 0];
        for (const i of [0, 1]) {
          const consumer = kafka.consumer({
            groupId,
            sessionTimeout: 10_000,
            heartbeatInterval: 500,
            maxWaitTimeInMs: 200,
            retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
          });
          consumers.push(consumer);
          consumer.on(consumer.events.CRASH, (e) => crashes.push(e.payload.error.message));
          consumer.on(consumer.events.GROUP_JOIN, (e) => joinedAs[i]!.push(e.payload.memberId));
          consumer.on(consumer.events.HEARTBEAT, () => heartbeats[i]!++);
          await consumer.connect();
          await consumer.subscribe({ topic, fromBeginning: true });
          await consumer.run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              const value = message.value!.toString();
              timesSeen.set(value, (timesSeen.get(value) ?? 0) + 1);
              // The audit's failure: this commit, by a member the coordinator forgot, crashed the consumer.
              await consumer.commitOffsets([
                { topic, partition, offset: String(Number(message.offset) + 1) },
              ]);
            },
          });
        }
        const produced: string[] = [];
        const produce = async (phase: string) => {
          const messages = Array.from({ length: 40 }, (_, i) => ({
            value: `${phase}-${i}`,
            partition: i % 4,
          }));
          await producer.send({ topic, acks: -1, messages });
          produced.push(...messages.map((m) => m.value));
        };
        const allCommitted = async () => {
          const ends = await admin.fetchTopicOffsets(topic);
          const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
          const byPartition = new Map(committed!.partitions.map((p) => [p.partition, p.offset]));
          return ends.every((end) => byPartition.get(end.partition) === end.high);
        };
        const consumedAndCommitted = async () =>
          produced.every((v) => timesSeen.has(v)) && (await allCommitted());

        await waitFor('two members sharing the four partitions', async () => {
          const group = await describeGroup(admin, groupId, topic);
          return group.state === 'Stable' && group.members.every((m) => m.partitions.length === 2);
        });
        await produce('before');
        await waitFor('the records before the restart consumed and committed', consumedAndCommitted);
        const before = await describeGroup(admin, groupId, topic);
        expect(before.members).toHaveLength(2);

        await admin.disconnect();
        await server.kill(signal);
        server = await startServer({ dir, port, kafka: FAST_GROUPS });
        admin = kafka.admin();
        await admin.connect();
        // The members come back from the meta store, before either consumer has been heard from.
        expect(await describeGroup(admin, groupId, topic)).toEqual(before);

        const heartbeatsAtRestart = [...heartbeats];
        await waitFor('both members heartbeating to the restarted broker', () =>
          heartbeats.every((n, i) => n > heartbeatsAtRestart[i]!),
        );
        await produce('after');
        await waitFor('the records after the restart consumed and committed', consumedAndCommitted);

        expect(crashes).toEqual([]);
        expect([...timesSeen.keys()].sort()).toEqual([...produced].sort());
        expect([...timesSeen].filter(([, times]) => times !== 1)).toEqual([]);
        // Neither consumer had to join again as a new member.
        expect(joinedAs.map((ids) => new Set(ids).size)).toEqual([1, 1]);
        expect(await describeGroup(admin, groupId, topic)).toEqual(before);
      } finally {
        for (const consumer of consumers) await consumer.disconnect().catch(() => {});
        await producer.disconnect().catch(() => {});
        await admin.disconnect().catch(() => {});
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
