import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssignerProtocol } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MetaStore } from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { KafkaErrorCode as E } from '../src/codec/error-codes.js';
import { groupsAdminResource } from '../src/groups/admin.js';
import { GroupCoordinator } from '../src/groups/coordinator.js';
import { GroupService } from '../src/groups/group-service.js';
import type { JoinGroupInput, JoinGroupOutcome, PersistedGroup } from '../src/groups/types.js';
import { ManualClock, settle } from './helpers/manual-clock.js';

const SUBSCRIPTION = AssignerProtocol.MemberMetadata.encode({
  version: 0,
  topics: ['orders'],
  userData: Buffer.alloc(0),
});
const PROTOCOLS = [
  { name: 'range', metadata: SUBSCRIPTION },
  { name: 'roundrobin', metadata: SUBSCRIPTION },
];
const assignmentOf = (...partitions: number[]) =>
  AssignerProtocol.MemberAssignment.encode({
    version: 0,
    assignment: { orders: partitions },
    userData: Buffer.alloc(0),
  });
const RECORD_KEY = '/kafka/groups/g/group';

function joinInput(clientId: string, overrides: Partial<JoinGroupInput> = {}): JoinGroupInput {
  return {
    groupId: 'g',
    memberId: '',
    groupInstanceId: null,
    clientId,
    clientHost: `/10.0.0.${clientId.length}`,
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 20_000,
    protocolType: 'consumer',
    protocols: PROTOCOLS,
    requireKnownMemberId: false,
    ...overrides,
  };
}

describe('consumer groups brought back after a restart', () => {
  let dir: string;
  let meta: MetaStore;
  let storage: MemoryStorageEngine;
  let clock: ManualClock;
  let service: GroupService;

  const open = async () => {
    meta = await openLocalMetaStore({ dir: join(dir, 'meta') });
    service = new GroupService({
      meta,
      storage,
      partitionCount: (topic) => Promise.resolve(topic === 'orders' ? 2 : null),
      clock,
      initialRebalanceDelayMs: 100,
    });
    await service.ready();
  };

  const restart = async () => {
    service.stop();
    await meta.close();
    await open();
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kafka-groups-restore-'));
    storage = new MemoryStorageEngine();
    clock = new ManualClock();
    for (const p of [0, 1]) await storage.createShard(`orders/${p}`);
    await open();
  });

  afterEach(async () => {
    service.stop();
    await meta.close();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  const heartbeat = (member: JoinGroupOutcome, groupInstanceId: string | null = null) =>
    service.coordinator.heartbeat({
      groupId: 'g',
      memberId: member.memberId,
      groupInstanceId,
      generationId: member.generationId,
    });

  const sync = (member: JoinGroupOutcome, assignments: { memberId: string; assignment: Uint8Array }[] = []) =>
    service.coordinator.syncGroup({
      groupId: 'g',
      memberId: member.memberId,
      groupInstanceId: null,
      generationId: member.generationId,
      protocolType: 'consumer',
      protocolName: member.protocolName,
      assignments,
    });

  const commit = async (member: JoinGroupOutcome, offset: number) => {
    const [topic] = await service.commitOffsets({
      groupId: 'g',
      memberId: member.memberId,
      groupInstanceId: null,
      generationId: member.generationId,
      topics: [
        {
          name: 'orders',
          partitions: [
            { partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null },
          ],
        },
      ],
    });
    return topic!.partitions[0]!.errorCode;
  };

  const storedRecord = async () => {
    const entry = await meta.get(RECORD_KEY);
    return entry && (JSON.parse(new TextDecoder().decode(entry.value)) as Record<string, unknown>);
  };

  /** Members a (static, `instance-a`, the leader) and b, Stable in generation 1 with a partition each. */
  async function stableGroup() {
    const joins = [
      service.coordinator.joinGroup(joinInput('a', { groupInstanceId: 'instance-a' })),
      service.coordinator.joinGroup(joinInput('bb')),
    ];
    // The initial delay, extended once because b joined during it.
    await clock.advance(200);
    const [a, b] = await Promise.all(joins);
    expect(a!.leader).toBe(a!.memberId);
    const synced = await Promise.all([
      sync(a!, [
        { memberId: a!.memberId, assignment: assignmentOf(0) },
        { memberId: b!.memberId, assignment: assignmentOf(1) },
      ]),
      sync(b!),
    ]);
    expect(synced.map((s) => s.errorCode)).toEqual([E.none, E.none]);
    return { a: a!, b: b! };
  }

  it('brings a Stable group back with its members, so they heartbeat, sync and commit as before', async () => {
    const { a, b } = await stableGroup();
    const before = await service.describeGroup('g');
    await restart();

    const after = await service.describeGroup('g');
    expect(after).toEqual(before);
    expect(after).toMatchObject({
      state: 'Stable',
      protocolType: 'consumer',
      protocolName: 'range',
      generationId: 1,
      leader: a.memberId,
      members: [
        { memberId: a.memberId, groupInstanceId: 'instance-a', clientId: 'a', clientHost: '/10.0.0.1' },
        { memberId: b.memberId, groupInstanceId: null, clientId: 'bb', clientHost: '/10.0.0.2' },
      ],
    });
    expect(Buffer.from(after.members[1]!.assignment)).toEqual(assignmentOf(1));
    expect(Buffer.from(after.members[1]!.metadata)).toEqual(SUBSCRIPTION);
    expect(await service.listGroups()).toEqual([{ groupId: 'g', protocolType: 'consumer', state: 'Stable' }]);
    expect((await groupsAdminResource(() => service).get('g'))?.members).toMatchObject([
      { memberId: a.memberId, assignment: [{ topic: 'orders', partitions: [0] }] },
      { memberId: b.memberId, assignment: [{ topic: 'orders', partitions: [1] }] },
    ]);

    expect(heartbeat(a, 'instance-a')).toBe(E.none);
    expect(heartbeat(b)).toBe(E.none);
    expect(await commit(b, 7)).toBe(E.none);
    const resynced = await sync(b);
    expect(resynced.errorCode).toBe(E.none);
    expect(Buffer.from(resynced.assignment)).toEqual(assignmentOf(1));
    // A follower rejoining with the protocols it had is answered without a rebalance.
    const rejoined = await service.coordinator.joinGroup(joinInput('bb', { memberId: b.memberId }));
    expect(rejoined).toMatchObject({ errorCode: E.none, generationId: 1, leader: a.memberId });
    expect(service.coordinator.state('g')).toBe('Stable');
  });

  it('stores the completed generation as JSON with every member, its protocols and its assignment', async () => {
    const { a, b } = await stableGroup();
    const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
    expect(await storedRecord()).toEqual({
      state: 'Stable',
      protocolType: 'consumer',
      generationId: 1,
      protocolName: 'range',
      leader: a.memberId,
      members: [a, b].map((m, i) => ({
        memberId: m.memberId,
        groupInstanceId: i === 0 ? 'instance-a' : null,
        clientId: i === 0 ? 'a' : 'bb',
        clientHost: i === 0 ? '/10.0.0.1' : '/10.0.0.2',
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 20_000,
        protocols: PROTOCOLS.map((p) => ({ name: p.name, metadata: base64(p.metadata) })),
        assignment: base64(assignmentOf(i)),
      })),
    });
  });

  it('expires restored members that never return once their session runs out, counted from the restart', async () => {
    const { a, b } = await stableGroup();
    service.stop();
    await meta.close();
    // The broker is down for longer than any session: sessions start afresh when it is back.
    await clock.advance(60_000);
    await open();
    await clock.advance(9_999);
    expect(service.coordinator.describe('g')!.members).toHaveLength(2);
    expect(heartbeat(a, 'instance-a')).toBe(E.none);
    await clock.advance(2);
    expect(service.coordinator.describe('g')).toMatchObject({
      state: 'PreparingRebalance',
      members: [{ memberId: a.memberId }],
    });
    expect(heartbeat(b)).toBe(E.unknownMemberId);
    expect(heartbeat(a, 'instance-a')).toBe(E.rebalanceInProgress);

    const next = await service.coordinator.joinGroup(
      joinInput('a', { memberId: a.memberId, groupInstanceId: 'instance-a' }),
    );
    expect(next).toMatchObject({ errorCode: E.none, generationId: 2, leader: a.memberId });
    await service.coordinator.syncGroup({
      groupId: 'g',
      memberId: a.memberId,
      groupInstanceId: 'instance-a',
      generationId: 2,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments: [{ memberId: a.memberId, assignment: assignmentOf(0, 1) }],
    });
    await restart();
    expect(service.coordinator.describe('g')).toMatchObject({
      state: 'Stable',
      generationId: 2,
      members: [{ memberId: a.memberId }],
    });
  });

  it('brings back a group caught mid-rebalance at its last completed generation', async () => {
    const { a, b } = await stableGroup();
    const c = service.coordinator.joinGroup(joinInput('ccc'));
    const rejoins = [
      service.coordinator.joinGroup(joinInput('a', { memberId: a.memberId, groupInstanceId: 'instance-a' })),
      service.coordinator.joinGroup(joinInput('bb', { memberId: b.memberId })),
    ];
    const [newcomer, aAgain] = await Promise.all([c, ...rejoins]);
    expect(aAgain!.generationId).toBe(2);
    expect(service.coordinator.state('g')).toBe('CompletingRebalance');
    await restart();

    expect(service.coordinator.describe('g')).toMatchObject({
      state: 'Stable',
      generationId: 1,
      members: [{ memberId: a.memberId }, { memberId: b.memberId }],
    });
    expect(heartbeat(newcomer)).toBe(E.unknownMemberId);
    expect((await sync(aAgain!)).errorCode).toBe(E.illegalGeneration);
    expect(heartbeat(a, 'instance-a')).toBe(E.none);
    expect(await commit(b, 3)).toBe(E.none);
  });

  it('keeps a member leaving across a restart, and then starts the rebalance its leaving began', async () => {
    const { a, b } = await stableGroup();
    service.coordinator.leaveGroup('g', [{ memberId: b.memberId, groupInstanceId: null }]);
    await restart();
    expect(await storedRecord()).toMatchObject({
      state: 'PreparingRebalance',
      generationId: 1,
      members: [{ memberId: a.memberId }],
    });

    expect(service.coordinator.describe('g')).toMatchObject({
      state: 'PreparingRebalance',
      generationId: 1,
      members: [{ memberId: a.memberId }],
    });
    expect(heartbeat(b)).toBe(E.unknownMemberId);
    expect(await commit(a, 4)).toBe(E.none);
    expect(heartbeat(a, 'instance-a')).toBe(E.rebalanceInProgress);
    const next = await service.coordinator.joinGroup(
      joinInput('a', { memberId: a.memberId, groupInstanceId: 'instance-a' }),
    );
    expect(next).toMatchObject({ errorCode: E.none, generationId: 2, leader: a.memberId });

    service.coordinator.leaveGroup('g', [{ memberId: '', groupInstanceId: 'instance-a' }]);
    await restart();
    expect(service.coordinator.describe('g')).toMatchObject({ state: 'Empty', generationId: 3, members: [] });
  });

  it('keeps the new member id of a static member that rejoined, so the restart does not fence it', async () => {
    const { a } = await stableGroup();
    const replaced = await service.coordinator.joinGroup(joinInput('a', { groupInstanceId: 'instance-a' }));
    expect(replaced).toMatchObject({ errorCode: E.none, generationId: 1, skipAssignment: true });
    expect(replaced.memberId).not.toBe(a.memberId);
    await restart();

    expect(heartbeat(replaced, 'instance-a')).toBe(E.none);
    expect(heartbeat(a, 'instance-a')).toBe(E.fencedInstanceId);
    const synced = await service.coordinator.syncGroup({
      groupId: 'g',
      memberId: replaced.memberId,
      groupInstanceId: 'instance-a',
      generationId: 1,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments: [],
    });
    expect(Buffer.from(synced.assignment)).toEqual(assignmentOf(0));
    expect(service.coordinator.describe('g')!.leader).toBe(replaced.memberId);
  });

  it('loads a group stored before members were kept as Empty, with its generation', async () => {
    await meta.put(
      RECORD_KEY,
      new TextEncoder().encode(JSON.stringify({ protocolType: 'consumer', generationId: 7 })),
    );
    await restart();

    expect(service.coordinator.describe('g')).toMatchObject({
      state: 'Empty',
      protocolType: 'consumer',
      generationId: 7,
      members: [],
    });
    const old = { memberId: 'consumer-1-old', generationId: 7 } as JoinGroupOutcome;
    expect(heartbeat(old)).toBe(E.unknownMemberId);
    expect(await commit(old, 1)).toBe(E.unknownMemberId);
    const joining = service.coordinator.joinGroup(joinInput('a'));
    await clock.advance(100);
    expect((await joining).generationId).toBe(8);
  });
});

describe('a generation completes once its record is stored', () => {
  function setup() {
    const saves: { group: PersistedGroup; done: (error?: Error) => void }[] = [];
    const coordinator = new GroupCoordinator({
      clock: new ManualClock(),
      initialRebalanceDelayMs: 0,
      onGroupChange: (_groupId, group) =>
        new Promise<void>((resolve, reject) =>
          saves.push({ group, done: (error) => (error ? reject(error) : resolve()) }),
        ),
    });
    return { coordinator, saves };
  }

  async function leaderSync(coordinator: GroupCoordinator) {
    const joined = await coordinator.joinGroup(joinInput('a'));
    let answer: { errorCode: number } | undefined;
    void coordinator
      .syncGroup({
        groupId: 'g',
        memberId: joined.memberId,
        groupInstanceId: null,
        generationId: joined.generationId,
        protocolType: 'consumer',
        protocolName: 'range',
        assignments: [{ memberId: joined.memberId, assignment: assignmentOf(0, 1) }],
      })
      .then((a) => (answer = a));
    await settle();
    return () => answer;
  }

  it('answers the SyncGroup only after the assignment is stored', async () => {
    const { coordinator, saves } = setup();
    const answer = await leaderSync(coordinator);
    expect(answer()).toBeUndefined();
    expect(coordinator.state('g')).toBe('CompletingRebalance');
    expect(saves.map((s) => s.group.state)).toEqual(['Stable']);
    saves[0]!.done();
    await settle();
    expect(answer()).toMatchObject({ errorCode: E.none });
    expect(coordinator.state('g')).toBe('Stable');
  });

  it('tells the members to rejoin when the assignment cannot be stored', async () => {
    const { coordinator, saves } = setup();
    const answer = await leaderSync(coordinator);
    saves[0]!.done(new Error('disk full'));
    await settle();
    expect(answer()).toMatchObject({ errorCode: E.coordinatorNotAvailable });
    expect(coordinator.state('g')).toBe('PreparingRebalance');
  });
});
