import { rmSync } from 'node:fs';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_CONFIG, adminApi } from './helpers/admin-api.js';
import { run } from './helpers/processes.js';
import { startServer, type KafkaServer } from './helpers/server.js';

const KCAT = '/usr/bin/kcat';
const PYTHON = '/usr/bin/python3';

let server: KafkaServer;
let admin: Admin;
const kafkaFor = (port: number) =>
  new Kafka({ brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, clientId: 'groups-clients' });

beforeAll(async () => {
  server = await startServer({ kafka: ['group_initial_rebalance_delay_ms = 0'], extra: ADMIN_CONFIG });
  admin = kafkaFor(server.port).admin();
  await admin.connect();
}, 30_000);

afterAll(async () => {
  await admin?.disconnect();
  await server?.stop();
});

async function committedOffsets(
  groupId: string,
  topic: string,
  client = admin,
): Promise<Record<number, string>> {
  const [fetched] = await client.fetchOffsets({ groupId, topics: [topic] });
  return Object.fromEntries(fetched!.partitions.map((p) => [p.partition, p.offset]));
}

describe('consumer groups with librdkafka and kafka-python', () => {
  it('consumes as a kcat -G group, resuming from its committed offsets', async () => {
    const topic = 'kcat-group-topic';
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
    const broker = `127.0.0.1:${server.port}`;
    const produce = (prefix: string, count: number) =>
      run(KCAT, ['-b', broker, '-t', topic, '-P', '-K', ':'], {
        input: Array.from({ length: count }, (_, i) => `${prefix}${i}:${prefix}-${i}`).join('\n') + '\n',
      });
    const consume = async (count: number) => {
      const { stdout } = await run(
        KCAT,
        [
          '-b',
          broker,
          '-G',
          'kcat-group',
          topic,
          '-c',
          String(count),
          '-f',
          '%s\\n',
          '-q',
          '-X',
          'auto.offset.reset=earliest',
        ],
        { timeoutMs: 60_000 },
      );
      return stdout.trim().split('\n').sort();
    };
    await produce('a', 30);
    const first = await consume(30);
    expect(first).toEqual(Array.from({ length: 30 }, (_, i) => `a-${i}`).sort());
    await produce('b', 9);
    const second = await consume(9);
    expect(second).toEqual(Array.from({ length: 9 }, (_, i) => `b-${i}`).sort());

    const ends = await admin.fetchTopicOffsets(topic);
    const committed = await committedOffsets('kcat-group', topic);
    for (const end of ends) expect(committed[end.partition]).toBe(end.high);
  }, 120_000);

  it('replaces a static kcat member that comes back without a rebalance', async () => {
    const topic = 'kcat-static-topic';
    const group = 'kcat-static-group';
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    const broker = `127.0.0.1:${server.port}`;
    const produce = (prefix: string) =>
      run(KCAT, ['-b', broker, '-t', topic, '-P', '-K', ':'], {
        input: Array.from({ length: 6 }, (_, i) => `${prefix}${i}:${prefix}-${i}`).join('\n') + '\n',
      });
    const consume = async (count: number) => {
      const { stdout } = await run(
        KCAT,
        [
          '-b',
          broker,
          '-G',
          group,
          topic,
          '-c',
          String(count),
          '-f',
          '%s\\n',
          '-q',
          '-X',
          'auto.offset.reset=earliest',
          '-X',
          'group.instance.id=static-1',
          '-X',
          'session.timeout.ms=30000',
        ],
        { timeoutMs: 60_000 },
      );
      return stdout.trim().split('\n').sort();
    };
    const generation = async () => {
      const { groups } = await admin.describeGroups([group]);
      return groups[0]!;
    };
    await produce('s');
    expect(await consume(6)).toEqual(Array.from({ length: 6 }, (_, i) => `s-${i}`).sort());
    // A static member does not leave when it closes: it is still in the group.
    const before = await generation();
    expect(before.state).toBe('Stable');
    expect(before.members).toHaveLength(1);
    await produce('t');
    expect(await consume(6)).toEqual(Array.from({ length: 6 }, (_, i) => `t-${i}`).sort());
    const after = await generation();
    expect(after.state).toBe('Stable');
    expect(after.members).toHaveLength(1);
    expect(after.members[0]!.memberId).not.toBe(before.members[0]!.memberId);
    const offsets = await committedOffsets(group, topic);
    const ends = await admin.fetchTopicOffsets(topic);
    for (const end of ends) expect(offsets[end.partition]).toBe(end.high);
  }, 120_000);

  it('consumes with a kafka-python KafkaConsumer group and commits', async () => {
    const topic = 'python-group-topic';
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    const script = `
import json, sys
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
bootstrap, topic = sys.argv[1], sys.argv[2]
partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
def consume(count):
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id='python-group',
                             auto_offset_reset='earliest', enable_auto_commit=False,
                             consumer_timeout_ms=20000, session_timeout_ms=10000, heartbeat_interval_ms=1000)
    values = []
    for message in consumer:
        values.append(message.value.decode())
        if len(values) == count:
            break
    consumer.commit()
    committed = [consumer.committed(p) for p in partitions]
    consumer.close()
    return values, committed
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
for i in range(20):
    producer.send(topic, value=('first-%d' % i).encode(), partition=i % 2)
producer.flush()
first, after_first = consume(20)
for i in range(6):
    producer.send(topic, value=('second-%d' % i).encode(), partition=i % 2)
producer.flush()
producer.close()
second, after_second = consume(6)
print(json.dumps({'first': first, 'second': second, 'afterFirst': after_first, 'afterSecond': after_second}))
`;
    const { stdout } = await run(PYTHON, ['-c', script, `127.0.0.1:${server.port}`, topic], {
      timeoutMs: 90_000,
    });
    const report = JSON.parse(stdout) as {
      first: string[];
      second: string[];
      afterFirst: number[];
      afterSecond: number[];
    };
    expect(report.first.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `first-${i}`).sort());
    expect(report.second.sort()).toEqual(Array.from({ length: 6 }, (_, i) => `second-${i}`).sort());
    expect(report.afterFirst).toEqual([10, 10]);
    expect(report.afterSecond).toEqual([13, 13]);
    expect(await committedOffsets('python-group', topic)).toEqual({ 0: '13', 1: '13' });
  }, 120_000);

  it('keeps committed offsets and groups across kill -9 and a restart, expiring a member that never returns', async () => {
    const fast = ['group_initial_rebalance_delay_ms = 0'];
    const own = await startServer({ kafka: fast });
    let restarted: KafkaServer | null = null;
    try {
      const kafka = kafkaFor(own.port);
      const ownAdmin = kafka.admin();
      await ownAdmin.connect();
      const topic = 'durable-offsets';
      await ownAdmin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: 8 }, (_, i) => ({ value: `before-${i}`, partition: i % 2 })),
      });
      await producer.disconnect();
      const consumer = kafka.consumer({
        groupId: 'durable-group',
        sessionTimeout: 6000,
        maxWaitTimeInMs: 200,
        // It loses its broker below: give up at once rather than retrying.
        retry: { retries: 0 },
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: () => {
              if (++seen === 8) resolve();
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
      await consumer.commitOffsets([
        { topic, partition: 0, offset: '4' },
        { topic, partition: 1, offset: '4' },
      ]);
      await ownAdmin.setOffsets({
        groupId: 'simple-group',
        topic,
        partitions: [{ partition: 1, offset: '2' }],
      });
      expect(await committedOffsets('durable-group', topic, ownAdmin)).toEqual({ 0: '4', 1: '4' });
      const stranded = (await ownAdmin.describeGroups(['durable-group'])).groups[0]!.members[0]!;
      await ownAdmin.disconnect();
      // No clean shutdown: the consumer is still in the group when the process dies.
      await own.kill();
      // The stranded client gives up in the background while the server restarts: it never comes back.
      const strandedGone = consumer.disconnect().catch(() => {});

      restarted = await startServer({ dir: own.dir, kafka: fast });
      const again = kafkaFor(restarted.port);
      const againAdmin = again.admin();
      await againAdmin.connect();
      expect(await committedOffsets('durable-group', topic, againAdmin)).toEqual({ 0: '4', 1: '4' });
      expect(await committedOffsets('simple-group', topic, againAdmin)).toEqual({ 0: '-1', 1: '2' });
      // The group comes back as it was, with the member it had when the process died.
      const { groups } = await againAdmin.describeGroups(['durable-group']);
      expect(groups[0]).toMatchObject({
        state: 'Stable',
        protocolType: 'consumer',
        protocol: 'RoundRobinAssigner',
      });
      expect(groups[0]!.members).toHaveLength(1);
      expect(groups[0]!.members[0]).toMatchObject({
        memberId: stranded.memberId,
        clientId: 'groups-clients',
        memberAssignment: stranded.memberAssignment,
      });

      // A consumer of the group picks up after the committed offsets only, once the stranded member's
      // session, started afresh at the restart, has run out.
      const producer2 = again.producer();
      await producer2.connect();
      await producer2.send({
        topic,
        acks: -1,
        messages: [
          { value: 'after-0', partition: 0 },
          { value: 'after-1', partition: 1 },
        ],
      });
      await producer2.disconnect();
      const resumed = again.consumer({
        groupId: 'durable-group',
        sessionTimeout: 6000,
        maxWaitTimeInMs: 200,
      });
      await resumed.connect();
      await resumed.subscribe({ topic, fromBeginning: true });
      const values: string[] = [];
      await new Promise<void>((resolve, reject) => {
        resumed
          .run({
            eachMessage: ({ message }) => {
              values.push(message.value!.toString());
              if (values.length === 2) resolve();
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
      await restarted.waitForLog((l) => l.msg === 'member session expired' && l.member === stranded.memberId);
      const [rejoined] = (await againAdmin.describeGroups(['durable-group'])).groups;
      expect(rejoined!.members.map((m) => m.memberId)).not.toContain(stranded.memberId);
      await resumed.disconnect();
      await againAdmin.disconnect();
      expect(values.sort()).toEqual(['after-0', 'after-1']);
      await strandedGone;
    } finally {
      if (restarted) await restarted.stop();
      else await own.stop();
      rmSync(own.dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('shows groups with lag, resets their offsets and deletes them through the admin HTTP API', async () => {
    const topic = 'admin-api-topic';
    const groupId = 'admin-api-group';
    const kafka = kafkaFor(server.port);
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 6 }, (_, i) => ({ value: `v${i}`, partition: i % 2 })),
    });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({ autoCommit: false, eachMessage: () => Promise.resolve(++seen === 6 ? resolve() : undefined) })
        .catch(reject);
    });
    await consumer.commitOffsets([
      { topic, partition: 0, offset: '3' },
      { topic, partition: 1, offset: '1' },
    ]);

    const api = await adminApi(server.httpUrl);
    const listed = await api.call('GET', '/api/v1/kafka/groups?limit=100');
    expect(listed.status).toBe(200);
    expect((listed.body as { items: unknown[] }).items).toContainEqual({
      id: groupId,
      state: 'Stable',
      protocolType: 'consumer',
      members: 1,
      coordinator: 1,
    });
    const detail = await api.call('GET', `/api/v1/kafka/groups/${groupId}`);
    expect(detail.body).toMatchObject({
      id: groupId,
      state: 'Stable',
      members: [{ clientId: 'groups-clients', assignment: [{ topic, partitions: [0, 1] }] }],
      offsets: [
        { topic, partition: 0, committedOffset: 3, endOffset: 3, lag: 0 },
        { topic, partition: 1, committedOffset: 1, endOffset: 3, lag: 2 },
      ],
    });
    const busy = await api.call('POST', `/api/v1/kafka/groups/${groupId}/reset-offsets`, {
      topic,
      to: 'earliest',
    });
    expect(busy.status).toBe(409);
    expect((await api.call('DELETE', `/api/v1/kafka/groups/${groupId}`)).status).toBe(409);

    await consumer.disconnect();
    const reset = await api.call('POST', `/api/v1/kafka/groups/${groupId}/reset-offsets`, {
      topic,
      to: 'earliest',
    });
    expect(reset).toEqual({
      status: 200,
      body: {
        group: groupId,
        topic,
        offsets: [
          { partition: 0, offset: 0 },
          { partition: 1, offset: 0 },
        ],
      },
    });
    expect(await committedOffsets(groupId, topic)).toEqual({ 0: '0', 1: '0' });
    const bad = await api.call('POST', `/api/v1/kafka/groups/${groupId}/reset-offsets`, {
      topic,
      to: 'tomorrow',
    });
    expect(bad.status).toBe(400);
    expect((await api.call('DELETE', `/api/v1/kafka/groups/${groupId}`)).status).toBe(204);
    expect((await api.call('GET', `/api/v1/kafka/groups/${groupId}`)).status).toBe(404);
  }, 60_000);
});
