import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isRobustMQError, topicKey, type AdminResource, type MetaStore } from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { KafkaErrorCode as E } from '../src/codec/error-codes.js';
import { groupsAdminResource } from '../src/groups/admin.js';
import { GroupService } from '../src/groups/group-service.js';
import { ManualClock, settle } from './helpers/manual-clock.js';

const topics: Record<string, number> = { orders: 2, audit: 1 };

/** A consumer-protocol subscription (version 0) to `names`. */
function subscription(...names: string[]): Uint8Array {
  const parts = [Buffer.from([0, 0]), Buffer.alloc(4)];
  parts[1]!.writeInt32BE(names.length);
  for (const name of names) {
    const len = Buffer.alloc(2);
    len.writeInt16BE(name.length);
    parts.push(len, Buffer.from(name));
  }
  parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  return Buffer.concat(parts);
}

/** A consumer-protocol assignment (version 0) of `partitions` of one topic. */
function assignment(topic: string, partitions: number[]): Uint8Array {
  const b = Buffer.alloc(2 + 4 + 2 + topic.length + 4 + 4 * partitions.length + 4);
  let at = b.writeInt16BE(0, 0);
  at = b.writeInt32BE(1, at);
  at = b.writeInt16BE(topic.length, at);
  at += b.write(topic, at);
  at = b.writeInt32BE(partitions.length, at);
  for (const p of partitions) at = b.writeInt32BE(p, at);
  b.writeInt32BE(-1, at);
  return b;
}

describe('committed offsets and the groups admin resource', () => {
  let dir: string;
  let meta: MetaStore;
  let storage: MemoryStorageEngine;
  let clock: ManualClock;
  let service: GroupService;
  let admin: AdminResource;

  const open = async (coordinates?: (groupId: string) => boolean) => {
    meta = await openLocalMetaStore({ dir: join(dir, 'meta') });
    service = new GroupService({
      meta,
      storage,
      partitionCount: (topic) => Promise.resolve(topics[topic] ?? null),
      clock,
      initialRebalanceDelayMs: 0,
      ...(coordinates ? { coordinates } : {}),
    });
    admin = groupsAdminResource(() => service);
    await service.ready();
  };

  const restart = async () => {
    service.stop();
    await meta.close();
    await open();
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kafka-groups-'));
    storage = new MemoryStorageEngine();
    clock = new ManualClock();
    for (const [topic, partitions] of Object.entries(topics)) {
      for (let p = 0; p < partitions; p++) await storage.createShard(`${topic}/${p}`);
    }
    const batch = (ts: number) => ({ recordCount: 5, maxTimestamp: ts, data: new Uint8Array(64) });
    await storage.append('orders/0', [batch(1000), batch(2000)]);
    await storage.append('orders/1', [batch(1500)]);
    await open();
  });

  afterEach(async () => {
    service.stop();
    await meta.close();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  const commit = (groupId: string, memberId: string, generationId: number, offsets: Record<string, number>) =>
    service.commitOffsets({
      groupId,
      memberId,
      groupInstanceId: null,
      generationId,
      topics: [
        {
          name: 'orders',
          partitions: Object.entries(offsets).map(([p, offset]) => ({
            partitionIndex: Number(p),
            committedOffset: offset,
            committedLeaderEpoch: 0,
            committedMetadata: `m${p}`,
          })),
        },
      ],
    });

  /** One stable member subscribed to orders and owning both partitions. */
  async function stableMember(groupId: string) {
    const input = {
      groupId,
      memberId: '',
      groupInstanceId: null,
      clientId: 'c',
      clientHost: '/127.0.0.1',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: subscription('orders') }],
      requireKnownMemberId: false,
    };
    const joined = await service.coordinator.joinGroup(input);
    await service.coordinator.syncGroup({
      groupId,
      memberId: joined.memberId,
      groupInstanceId: null,
      generationId: joined.generationId,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments: [{ memberId: joined.memberId, assignment: assignment('orders', [0, 1]) }],
    });
    return joined;
  }

  it('stores simple commits durably and fetches them after a restart', async () => {
    const result = await commit('simple', '', -1, { 0: 7, 1: 3 });
    expect(result[0]!.partitions.map((p) => p.errorCode)).toEqual([E.none, E.none]);
    await restart();
    const fetched = await service.fetchOffsets('simple', [{ name: 'orders', partitionIndexes: [0, 1] }]);
    expect(fetched[0]!.partitions).toEqual([
      { partitionIndex: 0, committedOffset: 7, committedLeaderEpoch: 0, metadata: 'm0', errorCode: E.none },
      { partitionIndex: 1, committedOffset: 3, committedLeaderEpoch: 0, metadata: 'm1', errorCode: E.none },
    ]);
    expect(await service.listGroups()).toEqual([{ groupId: 'simple', protocolType: '', state: 'Empty' }]);
  });

  it('lists a group it coordinates that nobody has asked about since a restart, as last stored', async () => {
    await commit('quiet', '', -1, { 0: 7 });
    service.stop();
    await meta.close();
    // In a cluster a broker starts before it has joined: it coordinates nothing yet when it loads.
    let joined = false;
    await open(() => joined);
    joined = true;
    expect(await service.listGroups()).toEqual([{ groupId: 'quiet', protocolType: '', state: 'Empty' }]);
    expect(await service.listGroups(['Stable'])).toEqual([]);
    expect((await admin.list({ limit: 10 })).items.map((item) => item.id)).toContain('quiet');
  });

  it('answers -1 for partitions without a commit and lists all committed ones for a null topic list', async () => {
    await commit('g', '', -1, { 1: 4 });
    const named = await service.fetchOffsets('g', [{ name: 'orders', partitionIndexes: [0] }]);
    expect(named[0]!.partitions[0]).toMatchObject({
      committedOffset: -1,
      committedLeaderEpoch: -1,
      metadata: '',
    });
    const unknownGroup = await service.fetchOffsets('nobody', [{ name: 'orders', partitionIndexes: [0] }]);
    expect(unknownGroup[0]!.partitions[0]!.committedOffset).toBe(-1);
    const all = await service.fetchOffsets('g', null);
    expect(all).toEqual([
      {
        name: 'orders',
        partitions: [
          {
            partitionIndex: 1,
            committedOffset: 4,
            committedLeaderEpoch: 0,
            metadata: 'm1',
            errorCode: E.none,
          },
        ],
      },
    ]);
  });

  it('refuses commits to unknown partitions, oversized metadata, and from non-members', async () => {
    const unknown = await service.commitOffsets({
      groupId: 'g',
      memberId: '',
      groupInstanceId: null,
      generationId: -1,
      topics: [
        {
          name: 'nope',
          partitions: [
            { partitionIndex: 0, committedOffset: 1, committedLeaderEpoch: -1, committedMetadata: null },
          ],
        },
        {
          name: 'orders',
          partitions: [
            { partitionIndex: 9, committedOffset: 1, committedLeaderEpoch: -1, committedMetadata: null },
            {
              partitionIndex: 0,
              committedOffset: 1,
              committedLeaderEpoch: -1,
              committedMetadata: 'x'.repeat(5000),
            },
          ],
        },
      ],
    });
    expect(unknown.map((t) => t.partitions.map((p) => p.errorCode))).toEqual([
      [E.unknownTopicOrPartition],
      [E.unknownTopicOrPartition, E.offsetMetadataTooLarge],
    ]);
    const member = await stableMember('live');
    expect((await commit('live', '', -1, { 0: 1 }))[0]!.partitions[0]!.errorCode).toBe(E.unknownMemberId);
    expect((await commit('live', member.memberId, 99, { 0: 1 }))[0]!.partitions[0]!.errorCode).toBe(
      E.illegalGeneration,
    );
    expect(
      (await commit('live', member.memberId, member.generationId, { 0: 1 }))[0]!.partitions[0]!.errorCode,
    ).toBe(E.none);
    expect((await commit('ghost', 'm', 3, { 0: 1 }))[0]!.partitions[0]!.errorCode).toBe(E.illegalGeneration);
  });

  it('keeps a group with its members across a restart, so they go on committing', async () => {
    const member = await stableMember('g');
    await commit('g', member.memberId, member.generationId, { 0: 5 });
    await settle();
    await restart();
    expect(service.coordinator.describe('g')).toMatchObject({
      state: 'Stable',
      generationId: 1,
      protocolType: 'consumer',
      members: [{ memberId: member.memberId }],
    });
    expect(
      (await commit('g', member.memberId, member.generationId, { 0: 6 }))[0]!.partitions[0]!.errorCode,
    ).toBe(E.none);
    expect((await service.fetchOffsets('g', null))[0]!.partitions[0]!.committedOffset).toBe(6);
  });

  it('deletes offsets of topics the group no longer consumes, and whole empty groups', async () => {
    const member = await stableMember('g');
    await commit('g', member.memberId, member.generationId, { 0: 5, 1: 2 });
    const refused = await service.deleteOffsets('g', [{ name: 'orders', partitionIndexes: [0] }]);
    expect(refused.topics[0]!.partitions[0]!.errorCode).toBe(E.groupSubscribedToTopic);
    expect(await service.deleteGroup('g')).toBe(E.nonEmptyGroup);
    service.coordinator.leaveGroup('g', [{ memberId: member.memberId, groupInstanceId: null }]);
    const deleted = await service.deleteOffsets('g', [{ name: 'orders', partitionIndexes: [0] }]);
    expect(deleted.topics[0]!.partitions[0]!.errorCode).toBe(E.none);
    expect((await service.fetchOffsets('g', null))[0]!.partitions.map((p) => p.partitionIndex)).toEqual([1]);
    expect((await service.deleteOffsets('nobody', [])).errorCode).toBe(E.groupIdNotFound);
    expect(await service.deleteGroup('g')).toBe(E.none);
    expect(await service.deleteGroup('g')).toBe(E.groupIdNotFound);
    await restart();
    expect(await service.listGroups()).toEqual([]);
    expect((await service.fetchOffsets('g', null)).length).toBe(0);
  });

  it('filters listed groups by state and protocol type', async () => {
    await stableMember('live');
    await commit('simple', '', -1, { 0: 1 });
    expect((await service.listGroups(['Stable'])).map((g) => g.groupId)).toEqual(['live']);
    expect((await service.listGroups([], ['consumer'])).map((g) => g.groupId)).toEqual(['live']);
    expect((await service.listGroups(['empty'])).map((g) => g.groupId)).toEqual(['simple']);
    expect((await service.describeGroup('none')).state).toBe('Dead');
  });

  it('shows groups, members, assignments and lag through the admin resource', async () => {
    const member = await stableMember('g');
    await commit('g', member.memberId, member.generationId, { 0: 4, 1: 5 });
    await commit('other', '', -1, { 0: 1 });
    const page = await admin.list({ limit: 1 });
    expect(page.items).toEqual([
      { id: 'g', state: 'Stable', protocolType: 'consumer', members: 1, coordinator: null },
    ]);
    expect(page.next).toBe('g');
    const rest = await admin.list({ limit: 10, after: 'g' });
    expect(rest.items.map((i) => i.id)).toEqual(['other']);
    expect(rest.next).toBeNull();
    const detail = await admin.get('g');
    expect(detail).toMatchObject({
      id: 'g',
      state: 'Stable',
      protocol: 'range',
      members: [
        { memberId: member.memberId, clientId: 'c', assignment: [{ topic: 'orders', partitions: [0, 1] }] },
      ],
    });
    const offsets = (
      detail as unknown as { offsets: { partition: number; lag: number; endOffset: number }[] }
    ).offsets;
    expect(offsets.map((o) => [o.partition, o.endOffset, o.lag])).toEqual([
      [0, 10, 6],
      [1, 5, 0],
    ]);
    expect(await admin.get('missing')).toBeNull();
  });

  it('resets offsets of an empty group through the admin action, and refuses while it has members', async () => {
    const member = await stableMember('g');
    const reset = admin.actions!['reset-offsets']!;
    await expect(reset('g', { topic: 'orders', to: 'earliest' })).rejects.toSatisfy((e) =>
      isRobustMQError(e, 'CONFLICT'),
    );
    await expect(admin.remove!('g')).rejects.toSatisfy((e) => isRobustMQError(e, 'CONFLICT'));
    service.coordinator.leaveGroup('g', [{ memberId: member.memberId, groupInstanceId: null }]);
    expect(await reset('g', { topic: 'orders', to: 'latest' })).toEqual({
      group: 'g',
      topic: 'orders',
      offsets: [
        { partition: 0, offset: 10 },
        { partition: 1, offset: 5 },
      ],
    });
    await reset('g', { topic: 'orders', to: 'timestamp', timestamp: 1800 });
    expect((await service.fetchOffsets('g', null))[0]!.partitions.map((p) => p.committedOffset)).toEqual([
      5, 5,
    ]);
    await reset('g', { topic: 'orders', to: 'earliest' });
    expect((await service.fetchOffsets('g', null))[0]!.partitions.map((p) => p.committedOffset)).toEqual([
      0, 0,
    ]);
    await expect(reset('g', { topic: 'orders', to: 'yesterday' })).rejects.toSatisfy((e) =>
      isRobustMQError(e, 'INVALID_ARGUMENT'),
    );
    await expect(reset('g', { topic: 'orders', to: 'timestamp' })).rejects.toSatisfy((e) =>
      isRobustMQError(e, 'INVALID_ARGUMENT'),
    );
    await expect(reset('g', { topic: 'missing', to: 'latest' })).rejects.toSatisfy((e) =>
      isRobustMQError(e, 'NOT_FOUND'),
    );
    expect(await admin.remove!('g')).toBe(true);
    expect(await admin.remove!('g')).toBe(false);
  });

  it('forgets the offsets of a topic once the topic is deleted', async () => {
    await commit('g', '', -1, { 0: 3, 1: 4 });
    await service.commitOffsets({
      groupId: 'g',
      memberId: '',
      groupInstanceId: null,
      generationId: -1,
      topics: [
        {
          name: 'audit',
          partitions: [
            { partitionIndex: 0, committedOffset: 9, committedLeaderEpoch: -1, committedMetadata: null },
          ],
        },
      ],
    });
    await meta.put(topicKey('orders'), new TextEncoder().encode('{}'));
    await meta.delete(topicKey('orders'));
    for (let i = 0; i < 100 && service.offsets.list('g').some((p) => p.topic === 'orders'); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await service.fetchOffsets('g', null)).map((t) => t.name)).toEqual(['audit']);
    await restart();
    expect((await service.fetchOffsets('g', null)).map((t) => t.name)).toEqual(['audit']);
  });
});
