import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger, type Authorizer, type MetaStore } from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { Broker } from '../src/broker/broker.js';
import { CloseConnection, type ConnectionState, type RequestContext } from '../src/broker/handler.js';
import { handleDeleteGroups } from '../src/broker/handlers/delete-groups.js';
import { handleDescribeGroups } from '../src/broker/handlers/describe-groups.js';
import { handleFindCoordinator } from '../src/broker/handlers/find-coordinator.js';
import { handleHeartbeat } from '../src/broker/handlers/heartbeat.js';
import { handleInitProducerId } from '../src/broker/handlers/init-producer-id.js';
import { handleJoinGroup } from '../src/broker/handlers/join-group.js';
import { handleLeaveGroup } from '../src/broker/handlers/leave-group.js';
import { handleListGroups } from '../src/broker/handlers/list-groups.js';
import { handleOffsetCommit } from '../src/broker/handlers/offset-commit.js';
import { handleOffsetDelete } from '../src/broker/handlers/offset-delete.js';
import { handleOffsetFetch } from '../src/broker/handlers/offset-fetch.js';
import { handleSaslAuthenticate } from '../src/broker/handlers/sasl-authenticate.js';
import { handleSaslHandshake } from '../src/broker/handlers/sasl-handshake.js';
import { handleSyncGroup } from '../src/broker/handlers/sync-group.js';
import { KafkaErrorCode as E } from '../src/codec/error-codes.js';
import { parseSettings } from '../src/config.js';
import { testBrokerContext } from './helpers/broker-context.js';

const auth: Authorizer = {
  authenticate: (c) =>
    Promise.resolve(
      c.username === 'alice' && Buffer.from(c.password ?? []).toString() === 'pw'
        ? { username: 'alice', superuser: false }
        : null,
    ),
  // Everyone may use every topic but `secret`.
  authorize: (_principal, _action, topic) => Promise.resolve(topic !== 'secret'),
  scramCredential: () => Promise.resolve(null),
};

describe('group, offset, producer and SASL handlers', () => {
  let dir: string;
  let meta: MetaStore;
  let storage: MemoryStorageEngine;
  let broker: Broker;

  const start = (settings: Record<string, unknown> = {}) => {
    // Groups, producers and SASL never decode records.
    const context = testBrokerContext({ storage, meta, nodeId: 3, auth });
    broker = new Broker(
      context,
      parseSettings({
        port: 9092,
        group_initial_rebalance_delay_ms: 0,
        advertised_host: 'kafka.local',
        ...settings,
      }),
    );
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kafka-handlers-'));
    meta = await openLocalMetaStore({ dir });
    storage = new MemoryStorageEngine();
    start();
    await broker.catalog.create({
      name: 'orders',
      partitions: 2,
      storageClass: 'memory',
      retentionMs: null,
      retentionBytes: null,
      configs: {},
    });
  });

  afterEach(async () => {
    await broker.stop();
    await meta.close();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  const connection = (): ConnectionState => ({
    id: 1,
    listener: 'tcp',
    remoteAddress: '10.0.0.7',
    remotePort: 5555,
    clientId: 'tester',
    principal: { username: null, superuser: false },
    authenticated: false,
    sasl: null,
    rawSasl: null,
  });

  const ctx = (apiKey: number, apiVersion: number, conn: ConnectionState = connection()): RequestContext => ({
    apiKey,
    apiVersion,
    correlationId: 1,
    clientId: 'tester',
    connection: conn,
    broker,
    logger: silentLogger,
  });

  it('names this broker as the coordinator, per key from v4', async () => {
    const v3 = await handleFindCoordinator({ key: 'g', keyType: 0 }, ctx(10, 3));
    expect(v3).toMatchObject({ errorCode: E.none, nodeId: 3, host: 'kafka.local', port: 9092 });
    const v4 = await handleFindCoordinator({ keyType: 0, coordinatorKeys: ['a', 'b'] }, ctx(10, 4));
    expect(v4.coordinators!.map((c) => [c.key, c.nodeId, c.errorCode])).toEqual([
      ['a', 3, E.none],
      ['b', 3, E.none],
    ]);
    const bad = await handleFindCoordinator({ keyType: 5, coordinatorKeys: ['a'] }, ctx(10, 4));
    expect(bad.coordinators![0]!.errorCode).toBe(E.invalidRequest);
  });

  it('runs a group through join, sync, commit, fetch, describe, list, leave and delete', async () => {
    const joinRequest = {
      groupId: 'g',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId: '',
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from('meta') }],
    };
    const required = await handleJoinGroup(joinRequest, ctx(11, 5));
    expect(required.errorCode).toBe(E.memberIdRequired);
    const joined = await handleJoinGroup({ ...joinRequest, memberId: required.memberId }, ctx(11, 5));
    expect(joined).toMatchObject({
      errorCode: E.none,
      generationId: 1,
      protocolName: 'range',
      leader: required.memberId,
    });
    const member = { groupId: 'g', generationId: 1, memberId: joined.memberId, groupInstanceId: null };
    const synced = await handleSyncGroup(
      { ...member, assignments: [{ memberId: joined.memberId, assignment: Buffer.from('mine') }] },
      ctx(14, 3),
    );
    expect(synced.assignment.toString()).toBe('mine');
    expect((await handleHeartbeat(member, ctx(12, 3))).errorCode).toBe(E.none);

    const committed = await handleOffsetCommit(
      {
        groupId: 'g',
        generationIdOrMemberEpoch: 1,
        memberId: joined.memberId,
        groupInstanceId: null,
        topics: [
          {
            name: 'orders',
            partitions: [
              { partitionIndex: 1, committedOffset: 42n, committedLeaderEpoch: 0, committedMetadata: null },
            ],
          },
        ],
      },
      ctx(8, 8),
    );
    expect(committed.topics[0]!.partitions[0]!.errorCode).toBe(E.none);
    const fetchedV5 = await handleOffsetFetch({ groupId: 'g', topics: null }, ctx(9, 5));
    expect(fetchedV5.topics![0]!.partitions[0]).toMatchObject({ partitionIndex: 1, committedOffset: 42n });
    const fetchedV8 = await handleOffsetFetch(
      {
        groups: [
          { groupId: 'g', topics: [{ name: 'orders', partitionIndexes: [0, 1] }] },
          { groupId: 'other', topics: null },
        ],
      },
      ctx(9, 8),
    );
    expect(
      fetchedV8.groups!.map((g) => [
        g.groupId,
        g.topics.flatMap((t) => t.partitions.map((p) => p.committedOffset)),
      ]),
    ).toEqual([
      ['g', [-1n, 42n]],
      ['other', []],
    ]);

    const described = await handleDescribeGroups({ groups: ['g', 'nope'] }, ctx(15, 5));
    expect(described.groups[0]).toMatchObject({
      groupState: 'Stable',
      protocolType: 'consumer',
      protocolData: 'range',
    });
    expect(described.groups[0]!.members[0]).toMatchObject({ clientId: 'tester', clientHost: '/10.0.0.7' });
    expect(described.groups[1]!.groupState).toBe('Dead');
    const listed = await handleListGroups({ statesFilter: ['Stable'], typesFilter: [] }, ctx(16, 5));
    expect(listed.groups).toEqual([
      { groupId: 'g', protocolType: 'consumer', groupState: 'Stable', groupType: 'classic' },
    ]);
    expect((await handleListGroups({ typesFilter: ['consumer'] }, ctx(16, 5))).groups).toEqual([]);

    expect((await handleDeleteGroups({ groupsNames: ['g'] }, ctx(42, 2))).results[0]!.errorCode).toBe(
      E.nonEmptyGroup,
    );
    const left = await handleLeaveGroup(
      { groupId: 'g', members: [{ memberId: joined.memberId, groupInstanceId: null }] },
      ctx(13, 4),
    );
    expect(left.errorCode).toBe(E.none);
    expect(left.members![0]!.errorCode).toBe(E.none);
    const leftAgain = await handleLeaveGroup({ groupId: 'g', memberId: joined.memberId }, ctx(13, 1));
    expect(leftAgain.errorCode).toBe(E.unknownMemberId);
    const deletedOffsets = await handleOffsetDelete(
      {
        groupId: 'g',
        topics: [
          { name: 'orders', partitions: [{ partitionIndex: 1 }, { partitionIndex: 5 }] },
          { name: 'no-such-topic', partitions: [{ partitionIndex: 0 }] },
        ],
      },
      ctx(47, 0),
    );
    // As in Kafka: a partition the topic does not have, or a topic that does not exist, is unknown.
    expect(deletedOffsets.topics.map((t) => t.partitions.map((p) => p.errorCode))).toEqual([
      [E.none, E.unknownTopicOrPartition],
      [E.unknownTopicOrPartition],
    ]);
    const deleted = await handleDeleteGroups({ groupsNames: ['g', 'nope'] }, ctx(42, 2));
    expect(deleted.results.map((r) => r.errorCode)).toEqual([E.none, E.groupIdNotFound]);
  });

  it('refuses offsets of topics the principal may not consume', async () => {
    const partition = {
      partitionIndex: 0,
      committedOffset: 5n,
      committedLeaderEpoch: -1,
      committedMetadata: null,
    };
    const committed = await handleOffsetCommit(
      {
        groupId: 'acl',
        generationIdOrMemberEpoch: -1,
        memberId: '',
        topics: [
          { name: 'secret', partitions: [partition] },
          { name: 'orders', partitions: [partition] },
        ],
      },
      ctx(8, 8),
    );
    expect(committed.topics.map((t) => [t.name, t.partitions[0]!.errorCode])).toEqual([
      ['secret', E.topicAuthorizationFailed],
      ['orders', E.none],
    ]);
    const named = await handleOffsetFetch(
      {
        groupId: 'acl',
        topics: [
          { name: 'secret', partitionIndexes: [0] },
          { name: 'orders', partitionIndexes: [0] },
        ],
      },
      ctx(9, 6),
    );
    expect(
      named.topics!.map((t) => [t.name, t.partitions[0]!.errorCode, t.partitions[0]!.committedOffset]),
    ).toEqual([
      ['secret', E.topicAuthorizationFailed, -1n],
      ['orders', E.none, 5n],
    ]);
    const deleted = await handleOffsetDelete(
      { groupId: 'acl', topics: [{ name: 'secret', partitions: [{ partitionIndex: 0 }] }] },
      ctx(47, 0),
    );
    expect(deleted.topics[0]!.partitions[0]!.errorCode).toBe(E.topicAuthorizationFailed);
  });

  it('refuses a committed offset past 2^53, which would read back as another one', async () => {
    const at = (partitionIndex: number, committedOffset: bigint) => ({
      partitionIndex,
      committedOffset,
      committedLeaderEpoch: -1,
      committedMetadata: null,
    });
    const committed = await handleOffsetCommit(
      {
        groupId: 'far',
        generationIdOrMemberEpoch: -1,
        memberId: '',
        topics: [{ name: 'orders', partitions: [at(0, 5n), at(1, 2n ** 63n - 1n)] }],
      },
      ctx(8, 8),
    );
    expect(committed.topics[0]!.partitions.map((p) => p.errorCode)).toEqual([E.none, E.offsetOutOfRange]);
    const fetched = await handleOffsetFetch(
      { groupId: 'far', topics: [{ name: 'orders', partitionIndexes: [0, 1] }] },
      ctx(9, 6),
    );
    expect(fetched.topics![0]!.partitions.map((p) => [p.errorCode, p.committedOffset])).toEqual([
      [E.none, 5n],
      [E.none, -1n],
    ]);
  });

  it('admits a JoinGroup v3 member without the two-step join and answers its v0 protocol name', async () => {
    const joined = await handleJoinGroup(
      {
        groupId: 'old',
        sessionTimeoutMs: 10_000,
        memberId: '',
        protocolType: 'consumer',
        protocols: [{ name: 'range', metadata: Buffer.alloc(0) }],
      },
      ctx(11, 0),
    );
    expect(joined.errorCode).toBe(E.none);
    expect(joined.members).toHaveLength(1);
  });

  it('hands out producer ids', async () => {
    const a = await handleInitProducerId({ transactionalId: null, transactionTimeoutMs: 60_000 }, ctx(22, 1));
    const b = await handleInitProducerId(
      { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 },
      ctx(22, 4),
    );
    expect(a).toMatchObject({ errorCode: E.none, producerEpoch: 0 });
    expect(b.producerId).not.toBe(a.producerId);
  });

  it('authenticates with SaslHandshake v1 and SaslAuthenticate', async () => {
    await broker.stop();
    start({ sasl_enabled: true, sasl_mechanisms: ['PLAIN'] });
    const conn = connection();
    const refused = await handleSaslHandshake({ mechanism: 'SCRAM-SHA-256' }, ctx(17, 1, conn));
    expect(refused).toEqual({ errorCode: E.unsupportedSaslMechanism, mechanisms: ['PLAIN'] });
    expect((await handleSaslHandshake({ mechanism: 'PLAIN' }, ctx(17, 1, conn))).errorCode).toBe(E.none);
    const ok = await handleSaslAuthenticate({ authBytes: Buffer.from('\0alice\0pw') }, ctx(36, 2, conn));
    expect(ok.errorCode).toBe(E.none);
    expect(conn.authenticated).toBe(true);
    expect(conn.principal.username).toBe('alice');

    const other = connection();
    await handleSaslHandshake({ mechanism: 'PLAIN' }, ctx(17, 1, other));
    const bad = await handleSaslAuthenticate({ authBytes: Buffer.from('\0alice\0nope') }, ctx(36, 1, other));
    expect(bad.errorCode).toBe(E.saslAuthenticationFailed);
    expect(bad.errorMessage).toMatch(/Authentication failed/);
    expect(other.authenticated).toBe(false);
  });

  it('authenticates raw SASL frames after SaslHandshake v0, closing the connection on failure', async () => {
    await broker.stop();
    start({ sasl_enabled: true });
    const conn = connection();
    await handleSaslHandshake({ mechanism: 'PLAIN' }, ctx(17, 0, conn));
    expect(conn.rawSasl).not.toBeNull();
    const reply = await conn.rawSasl!(Buffer.from('\0alice\0pw'));
    expect(reply).toEqual(Buffer.alloc(0));
    expect(conn.authenticated).toBe(true);
    expect(conn.rawSasl).toBeNull();

    const other = connection();
    await handleSaslHandshake({ mechanism: 'PLAIN' }, ctx(17, 0, other));
    await expect(other.rawSasl!(Buffer.from('\0alice\0no'))).rejects.toBeInstanceOf(CloseConnection);
    expect(other.authenticated).toBe(false);
  });

  it('refuses SASL when it is not enabled', async () => {
    const conn = connection();
    expect((await handleSaslHandshake({ mechanism: 'PLAIN' }, ctx(17, 1, conn))).errorCode).toBe(
      E.illegalSaslState,
    );
    const auth = await handleSaslAuthenticate({ authBytes: Buffer.from('\0alice\0pw') }, ctx(36, 1, conn));
    expect(auth.errorCode).toBe(E.illegalSaslState);
  });
});
