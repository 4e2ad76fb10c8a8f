import { spawn } from 'node:child_process';
import { CompressionTypes, Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeRecordBatch,
  KafkaErrorCode,
  type CreateTopicsResponse,
  type DeleteTopicsResponse,
  type DeleteGroupsResponse,
  type DescribeGroupsResponse,
  type FetchResponse,
  type FindCoordinatorResponse,
  type HeartbeatResponse,
  type JoinGroupResponse,
  type LeaveGroupResponse,
  type MetadataResponse,
  type OffsetCommitResponse,
  type OffsetDeleteResponse,
  type OffsetFetchResponse,
  type ProduceResponse,
  type SyncGroupResponse,
} from '../src/codec/index.js';
import { adminApi } from './helpers/admin-api.js';
import { Member, waitFor } from './helpers/group-members.js';
import { run } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';
import { freePort, startExampleBroker, startExampleJournal } from './helpers/example-cluster.js';
import type { KafkaServer } from './helpers/server.js';

// Two stateless brokers on one journal node: Kafka clients see one cluster, each consumer group
// has one coordinator and each partition one leader, whichever broker a client started from, and
// both move to the other broker when one is killed.

const SESSION_TIMEOUT_MS = 1500;

/** The example's journal node; it has no protocols. */
const startMetaJournalNode = (rpcPort: number) => startExampleJournal(rpcPort);

/** Broker 2 or 3, with quick heartbeats and group timeouts (again in `dir`, if given). */
function startBroker(nodeId: number, rpcPort: number, dir?: string): Promise<KafkaServer> {
  return startExampleBroker(nodeId, rpcPort, {
    ...(dir === undefined ? {} : { dir }),
    flags: [
      '--set',
      'cluster.broker_heartbeat_interval_ms=100',
      '--set',
      `cluster.broker_session_timeout_ms=${SESSION_TIMEOUT_MS}`,
      '--set',
      'kafka.group_min_session_timeout_ms=1000',
      '--set',
      'kafka.group_initial_rebalance_delay_ms=500',
    ],
  });
}

async function metadata(port: number, topics: string[] | null): Promise<MetadataResponse> {
  const client = await RawClient.open(port);
  try {
    return await client.request<MetadataResponse>(3, 9, {
      topics: topics?.map((name) => ({ name })) ?? null,
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
  } finally {
    client.close();
  }
}

async function coordinatorOf(port: number, group: string): Promise<number> {
  const client = await RawClient.open(port);
  try {
    const response = await client.request<FindCoordinatorResponse>(10, 3, { key: group, keyType: 0 });
    expect(response.errorCode).toBe(0);
    return response.nodeId!;
  } finally {
    client.close();
  }
}

const leaders = (response: MetadataResponse) =>
  response.topics
    .flatMap((t) => t.partitions.map((p) => `${t.name}/${p.partitionIndex}@${p.leaderId}`))
    .sort();

let metaNode: KafkaServer;
const brokers = new Map<number, KafkaServer>();
let rpcPort: number;

beforeAll(async () => {
  rpcPort = await freePort();
  metaNode = await startMetaJournalNode(rpcPort);
  const [two, three] = await Promise.all([startBroker(2, rpcPort), startBroker(3, rpcPort)]);
  brokers.set(2, two);
  brokers.set(3, three);
  await waitFor('both brokers to see each other', async () => {
    const views = await Promise.all([two.port, three.port].map((port) => metadata(port, [])));
    return views.every((m) => m.brokers.length === 2);
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([...brokers.values()].map((b) => b.stop()));
  await metaNode?.stop();
});

describe('a Kafka cluster of two brokers on one journal node', () => {
  it('lists both brokers and gives each partition one leader, the same from either broker', async () => {
    const [two, three] = [brokers.get(2)!, brokers.get(3)!];
    const admin = new Kafka({ brokers: [`127.0.0.1:${two.port}`], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'spread', numPartitions: 8 }], waitForLeaders: true });
      const cluster = await admin.describeCluster();
      expect(cluster.brokers.map((b) => [b.nodeId, b.port]).sort()).toEqual([
        [2, two.port],
        [3, three.port],
      ]);
    } finally {
      await admin.disconnect();
    }
    const [fromTwo, fromThree] = await Promise.all([
      metadata(two.port, ['spread']),
      metadata(three.port, ['spread']),
    ]);
    expect(leaders(fromTwo)).toEqual(leaders(fromThree));
    const leaderIds = new Set(fromTwo.topics[0]!.partitions.map((p) => p.leaderId));
    expect([...leaderIds].sort()).toEqual([2, 3]);
    expect(fromTwo.controllerId).toBe(fromThree.controllerId);
  });

  it('leads each partition of a topic made from a replica assignment by its first broker, seen from either broker', async () => {
    const [two, three] = [brokers.get(2)!, brokers.get(3)!];
    const kafka = new Kafka({ brokers: [`127.0.0.1:${two.port}`], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const replicaAssignment = [
        { partition: 0, replicas: [3, 2] },
        { partition: 1, replicas: [2, 3] },
        { partition: 2, replicas: [3, 2] },
        { partition: 3, replicas: [2, 3] },
      ];
      await admin.createTopics({ topics: [{ topic: 'placed', replicaAssignment }], waitForLeaders: true });
      const misplaced = [
        { partition: 0, replicas: [2] },
        { partition: 1, replicas: [2, 3] },
      ];
      await expect(
        admin.createTopics({ topics: [{ topic: 'misplaced', replicaAssignment: misplaced }] }),
      ).rejects.toMatchObject({ errors: [expect.objectContaining({ type: 'INVALID_REPLICA_ASSIGNMENT' })] });
      const wanted = ['placed/0@3', 'placed/1@2', 'placed/2@3', 'placed/3@2'];
      await waitFor('both brokers to follow the assignment', async () => {
        const views = await Promise.all([two.port, three.port].map((port) => metadata(port, ['placed'])));
        return views.every((view) => leaders(view).join() === wanted.join());
      });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: 'placed',
        messages: [0, 1, 2, 3].map((partition) => ({ partition, value: `p${partition}` })),
      });
      await producer.disconnect();
      expect((await admin.fetchTopicOffsets('placed')).map((p) => [p.partition, p.high]).sort()).toEqual([
        [0, '1'],
        [1, '1'],
        [2, '1'],
        [3, '1'],
      ]);
    } finally {
      await admin.disconnect();
    }
  });

  it('sends clients to the coordinator and the leader: NOT_COORDINATOR and NOT_LEADER_OR_FOLLOWER elsewhere', async () => {
    const group = 'routed';
    const coordinator = await coordinatorOf(brokers.get(2)!.port, group);
    const other = brokers.get(coordinator === 2 ? 3 : 2)!;
    const client = await RawClient.open(other.port);
    try {
      const partition = {
        partitionIndex: 0,
        committedOffset: 1n,
        committedLeaderEpoch: -1,
        committedMetadata: null,
      };
      const joined = await client.request<JoinGroupResponse>(11, 5, {
        groupId: group,
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 10_000,
        memberId: '',
        groupInstanceId: null,
        protocolType: 'consumer',
        protocols: [{ name: 'range', metadata: Buffer.alloc(0) }],
      });
      const member = { groupId: group, generationId: 1, memberId: 'm', groupInstanceId: null };
      const synced = await client.request<SyncGroupResponse>(14, 3, { ...member, assignments: [] });
      const beat = await client.request<HeartbeatResponse>(12, 3, member);
      const left = await client.request<LeaveGroupResponse>(13, 3, {
        groupId: group,
        members: [{ memberId: 'm', groupInstanceId: null }],
      });
      const committed = await client.request<OffsetCommitResponse>(8, 7, {
        groupId: group,
        generationIdOrMemberEpoch: -1,
        memberId: '',
        groupInstanceId: null,
        topics: [{ name: 'spread', partitions: [partition] }],
      });
      const fetchedV1 = await client.request<OffsetFetchResponse>(9, 1, {
        groupId: group,
        topics: [{ name: 'spread', partitionIndexes: [0] }],
      });
      const fetchedV7 = await client.request<OffsetFetchResponse>(9, 7, { groupId: group, topics: null });
      const fetchedV8 = await client.request<OffsetFetchResponse>(9, 8, {
        groups: [{ groupId: group, topics: null }],
      });
      const described = await client.request<DescribeGroupsResponse>(15, 4, { groups: [group] });
      const deleted = await client.request<DeleteGroupsResponse>(42, 2, { groupsNames: [group] });
      const offsetsDeleted = await client.request<OffsetDeleteResponse>(47, 0, {
        groupId: group,
        topics: [{ name: 'spread', partitions: [{ partitionIndex: 0 }] }],
      });
      const NOT_COORDINATOR = 16;
      expect([
        joined.errorCode,
        synced.errorCode,
        beat.errorCode,
        left.errorCode,
        committed.topics[0]!.partitions[0]!.errorCode,
        fetchedV1.topics![0]!.partitions[0]!.errorCode,
        fetchedV7.errorCode,
        fetchedV8.groups![0]!.errorCode,
        described.groups[0]!.errorCode,
        deleted.results[0]!.errorCode,
        offsetsDeleted.errorCode,
      ]).toEqual(Array(11).fill(NOT_COORDINATOR));

      // A partition of `spread` (created by the first test) that the other broker leads.
      const view = await metadata(other.port, ['spread']);
      const otherId = coordinator === 2 ? 3 : 2;
      const ledThere = view.topics[0]!.partitions.find((p) => p.leaderId !== otherId)!.partitionIndex;
      const records = await encodeRecordBatch({ records: [{ value: Buffer.from('x') }] });
      const produced = await client.request<ProduceResponse>(0, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: 'spread', partitionData: [{ index: ledThere, records }] }],
      });
      const fetched = await client.request<FetchResponse>(1, 12, {
        replicaId: -1,
        maxWaitMs: 100,
        minBytes: 1,
        maxBytes: 1 << 20,
        isolationLevel: 0,
        topics: [
          {
            topic: 'spread',
            partitions: [{ partition: ledThere, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }],
          },
        ],
      });
      const NOT_LEADER_OR_FOLLOWER = 6;
      expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(NOT_LEADER_OR_FOLLOWER);
      expect(fetched.responses[0]!.partitions[0]!.errorCode).toBe(NOT_LEADER_OR_FOLLOWER);
    } finally {
      client.close();
    }
  });

  it('writes log lines that name their protocol and component once (log stores refuse a key given twice)', () => {
    const kafkaLines = brokers.get(2)!.rawLogs.filter((line) => line.includes('"protocol":"kafka"'));
    expect(kafkaLines.some((line) => line.includes('Kafka plugin started'))).toBe(true);
    for (const line of kafkaLines) expect(line.split('"protocol":').length - 1).toBe(1);
  });

  it('takes kcat writes to every partition leader and gives them to kafka-python from the other broker', async () => {
    const [two, three] = [brokers.get(2)!, brokers.get(3)!];
    const topic = 'through-leaders';
    const listed = JSON.parse(
      (await run('/usr/bin/kcat', ['-b', `127.0.0.1:${two.port}`, '-L', '-J'])).stdout,
    ) as {
      brokers: { id: number }[];
    };
    expect(listed.brokers.map((b) => b.id).sort()).toEqual([2, 3]);
    const admin = new Kafka({ brokers: [`127.0.0.1:${three.port}`], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 8 }], waitForLeaders: true });
    await admin.disconnect();
    // librdkafka sends each partition's batch to its leader, whichever broker it started from.
    const lines = Array.from({ length: 200 }, (_, i) => `k${i}:v${i}`);
    await run(
      '/usr/bin/kcat',
      [
        '-b',
        `127.0.0.1:${two.port}`,
        '-t',
        topic,
        '-P',
        '-K',
        ':',
        '-X',
        'acks=all',
        '-X',
        'enable.idempotence=true',
      ],
      { input: lines.join('\n') + '\n' },
    );
    const script = [
      'from kafka import KafkaConsumer',
      `c = KafkaConsumer("${topic}", bootstrap_servers="127.0.0.1:${three.port}", auto_offset_reset="earliest", consumer_timeout_ms=5000)`,
      'for m in c: print(m.partition, m.value.decode())',
    ].join('\n');
    const { stdout } = await run('/usr/bin/python3', ['-c', script], { timeoutMs: 60_000 });
    const received = stdout
      .trim()
      .split('\n')
      .map((line) => line.split(' '));
    expect(received.map(([, value]) => value).sort()).toEqual(lines.map((l) => l.split(':')[1]).sort());
    // Records came back from partitions led by each broker.
    const view = await metadata(two.port, [topic]);
    const leaderOf = new Map(view.topics[0]!.partitions.map((p) => [p.partitionIndex, p.leaderId]));
    expect(new Set(received.map(([partition]) => leaderOf.get(Number(partition))))).toEqual(new Set([2, 3]));
  }, 60_000);

  it('gives a topic deleted through one broker and created again at once through the other every record produced to it', async () => {
    const [two, three] = [brokers.get(2)!, brokers.get(3)!];
    const topic = 'reborn';
    const partitions = 64;
    // Each admin request goes to the broker named (KafkaJS would send both to its controller).
    const [deleting, creating] = await Promise.all([RawClient.open(two.port), RawClient.open(three.port)]);
    const create = async () =>
      (
        await creating.request<CreateTopicsResponse>(19, 7, {
          topics: [
            { name: topic, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] },
          ],
          timeoutMs: 10_000,
        })
      ).topics[0]!.errorCode;
    const producer = new Kafka({
      brokers: [`127.0.0.1:${three.port}`],
      logLevel: logLevel.NOTHING,
    }).producer();
    await producer.connect();
    try {
      expect(await create()).toBe(0);
      const eachPartition = (value: string) =>
        Array.from({ length: partitions }, (_, partition) => ({ partition, value: `${value}-${partition}` }));
      await producer.send({ topic, acks: -1, messages: eachPartition('old') });
      // The deletion removes one shard after another through the journal node; the creation comes
      // in while it does, and records are produced to the new topic at once.
      const deleted = deleting.request<DeleteTopicsResponse>(20, 4, {
        topicNames: [topic],
        timeoutMs: 10_000,
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      let created = await create();
      for (let tries = 0; created !== 0 && tries < 100; tries++) {
        expect(created).toBe(KafkaErrorCode.topicAlreadyExists);
        await new Promise((resolve) => setTimeout(resolve, 20));
        created = await create();
      }
      expect(created).toBe(0);
      await producer.send({ topic, acks: -1, messages: eachPartition('new') });
      expect((await deleted).responses[0]!.errorCode).toBe(0);
      const { stdout } = await run('/usr/bin/kcat', [
        '-b',
        `127.0.0.1:${two.port}`,
        '-t',
        topic,
        '-C',
        '-e',
        '-q',
        '-f',
        '%s\n',
      ]);
      const expected = eachPartition('new').map((m) => m.value);
      expect(stdout.trim().split('\n').sort()).toEqual(expected.sort());
    } finally {
      await producer.disconnect();
      deleting.close();
      creating.close();
    }
  }, 60_000);

  it('keeps a kcat (librdkafka) consumer group and producer going while a leader is killed and comes back', async () => {
    const topic = 'ledger';
    const bootstrap = [...brokers.values()].map((b) => `127.0.0.1:${b.port}`).join(',');
    const admin = new Kafka({ brokers: [bootstrap.split(',')[0]!], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
    await admin.disconnect();
    const leaderIds = new Set(
      (await metadata(brokers.get(2)!.port, [topic])).topics[0]!.partitions.map((p) => p.leaderId),
    );
    // Kill a broker that leads some partitions (with 4 partitions and 2 brokers, most often both do).
    const victim = leaderIds.has(3) ? 3 : 2;

    const consumer = spawn(
      'kcat',
      ['-u', '-b', bootstrap, '-G', 'ledger-readers', '-o', 'beginning', '-f', '%s\n', topic],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const consumed: string[] = [];
    let buffered = '';
    consumer.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      consumed.push(...lines);
    });
    const sent: string[] = [];
    const produce = async (tag: string) => {
      const values = Array.from({ length: 100 }, (_, i) => `${tag}-${i}`);
      sent.push(...values);
      await run('kcat', ['-b', bootstrap, '-P', '-t', topic, '-K:'], {
        input: values.map((value, i) => `k${i}:${value}\n`).join(''),
        timeoutMs: 60_000,
      });
    };
    const allConsumed = (what: string) =>
      waitFor(what, () => sent.every((value) => consumed.includes(value)), 30_000);
    try {
      await produce('before');
      await allConsumed('the first 100 consumed');

      const killed = brokers.get(victim)!;
      await killed.kill();
      await produce('while-down');
      await allConsumed('what was produced while a leader was down');

      const since = await startBroker(victim, rpcPort, killed.dir);
      brokers.set(victim, since);
      await waitFor(
        'the broker back in the cluster',
        async () => (await metadata(since.port, [])).brokers.length === 2,
      );
      await produce('after-restart');
      await allConsumed('what was produced once it was back');
      // At least once across the group's moves; nothing is lost, and nothing made up.
      expect(new Set(consumed)).toEqual(new Set(sent));
    } finally {
      consumer.kill('SIGKILL');
    }
  }, 120_000);

  it('runs one consumer group across both brokers, and moves it and the partitions when one is killed', async () => {
    const topic = 'orders';
    const group = 'billing';
    const ports = new Map([...brokers].map(([id, b]) => [id, b.port]));
    const admin = new Kafka({ brokers: [`127.0.0.1:${ports.get(2)}`], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
    await admin.disconnect();
    // Both brokers name the same coordinator, so a member started from each joins one group.
    const coordinator = await coordinatorOf(ports.get(2)!, group);
    expect(await coordinatorOf(ports.get(3)!, group)).toBe(coordinator);
    const survivor = coordinator === 2 ? 3 : 2;

    const onCoordinator = new Member(`127.0.0.1:${ports.get(coordinator)}`, topic, group, 'a', 5);
    const onSurvivor = new Member(`127.0.0.1:${ports.get(survivor)}`, topic, group, 'b', 5);
    const members = [onCoordinator, onSurvivor];
    const producer = new Kafka({
      brokers: [`127.0.0.1:${ports.get(survivor)}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    }).producer({ idempotent: true });
    const sent: string[] = [];
    const send = async (producer: Producer, count: number) => {
      const values = Array.from({ length: count }, () => `m${sent.length + Math.random()}`);
      for (const value of values) sent.push(value);
      await producer.send({
        topic,
        compression: CompressionTypes.None,
        messages: values.map((value, i) => ({ key: `k${i}`, value })),
      });
    };
    try {
      await producer.connect();
      // Each member gets its own half of the partitions: one group, not two.
      await waitFor('two members sharing the partitions', () => {
        const [a, b] = [onCoordinator.assignment(), onSurvivor.assignment()];
        return a?.length === 3 && b?.length === 3;
      });
      expect(new Set([...onCoordinator.assignment()!, ...onSurvivor.assignment()!]).size).toBe(6);
      await send(producer, 300);
      await waitFor('the first 300 consumed', () => members.flatMap((m) => m.values()).length >= 300);
      const firstPhase = members.flatMap((m) => m.values());
      expect(firstPhase.sort()).toEqual([...sent].sort());
      // Either node's admin API shows the group with its coordinator, its members and offsets.
      for (const id of [2, 3]) {
        const api = await adminApi(brokers.get(id)!.httpUrl);
        await waitFor(`node ${id} to show the group's offsets`, async () => {
          const detail = (await api.call('GET', `/api/v1/kafka/groups/${group}`)).body as {
            coordinator: number;
            members: unknown[];
            offsets: { committedOffset: number }[];
          };
          const committed = detail.offsets.reduce((sum, p) => sum + p.committedOffset, 0);
          return detail.coordinator === coordinator && detail.members.length === 2 && committed === 300;
        });
        const listed = (await api.call('GET', '/api/v1/kafka/groups')).body as { items: unknown[] };
        expect(listed.items).toContainEqual({
          id: group,
          state: 'Stable',
          protocolType: 'consumer',
          members: 2,
          coordinator,
        });
      }

      // The coordinator's broker dies with its member: the survivor's broker takes the group and
      // every partition over, with the offsets committed so far.
      await brokers.get(coordinator)!.kill();
      onCoordinator.child.kill('SIGKILL');
      await send(producer, 300);
      await waitFor(
        'the survivor owning every partition',
        () => onSurvivor.assignment()?.length === 6,
        30_000,
      );
      await waitFor(
        'every record consumed',
        () => new Set(members.flatMap((m) => m.values())).size === sent.length,
        30_000,
      );
      expect(await coordinatorOf(ports.get(survivor)!, group)).toBe(survivor);
      const view = await metadata(ports.get(survivor)!, [topic]);
      expect(view.brokers.map((b) => b.nodeId)).toEqual([survivor]);
      expect(new Set(view.topics[0]!.partitions.map((p) => p.leaderId))).toEqual(new Set([survivor]));
      // The idempotent producer's retries across the leader change stored nothing twice.
      const survivorAdmin = new Kafka({
        brokers: [`127.0.0.1:${ports.get(survivor)}`],
        logLevel: logLevel.NOTHING,
      }).admin();
      await survivorAdmin.connect();
      const offsets = await survivorAdmin.fetchTopicOffsets(topic);
      await survivorAdmin.disconnect();
      expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(sent.length);
    } finally {
      await producer.disconnect();
      for (const member of members) member.child.kill('SIGKILL');
      await Promise.all(members.map((m) => m.exited));
    }
  }, 120_000);
});
