import {
  ErrorCode,
  RobustMQError,
  shardName,
  silentLogger,
  TOPICS_PREFIX,
  type MetaWatch,
  type Logger,
  type MetaStore,
  type Metrics,
  type StorageEngine,
} from '@robustmq/core';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import type { Clock } from './clock.js';
import { subscribedTopics } from './consumer-protocol.js';
import { GroupCoordinator } from './coordinator.js';
import { emptyGroupRecord } from './group-record.js';
import { GROUPS_PREFIX, OffsetStore, type CommittedOffset } from './offset-store.js';
import type { GroupState, GroupSummary, PersistedGroup } from './types.js';

/** Kafka's `offset.metadata.max.bytes`. */
const MAX_METADATA_BYTES = 4096;

export interface GroupServiceOptions {
  meta: MetaStore;
  storage: StorageEngine;
  /** Partitions of a topic, or null when it does not exist. */
  partitionCount(topic: string): Promise<number | null>;
  /**
   * Whether this broker coordinates the group now (in a cluster, one broker does); every group
   * when unset.
   */
  coordinates?: (groupId: string) => boolean;
  /** The node id of the broker coordinating the group, or null while none is live. */
  coordinatorOf?: (groupId: string) => number | null;
  /** Subscribes to changes of who coordinates what; returns what unsubscribes. */
  onCoordinatorsChange?: (listener: () => void) => () => void;
  logger?: Logger;
  metrics?: Metrics;
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
  initialRebalanceDelayMs?: number;
  maxGroupSize?: number;
  clock?: Clock;
}

export interface OffsetCommitTopic {
  name: string;
  partitions: readonly {
    partitionIndex: number;
    committedOffset: number;
    committedLeaderEpoch: number;
    committedMetadata: string | null;
  }[];
}

export interface OffsetCommitInput {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  generationId: number;
  topics: readonly OffsetCommitTopic[];
}

export interface PartitionError {
  partitionIndex: number;
  errorCode: number;
}

export interface FetchedOffset {
  partitionIndex: number;
  committedOffset: number;
  committedLeaderEpoch: number;
  metadata: string;
  errorCode: number;
}

/** Committed offset, end offset and lag of one partition (admin API and tests). */
export interface PartitionLag {
  topic: string;
  partition: number;
  committedOffset: number;
  endOffset: number | null;
  lag: number | null;
  metadata: string;
  commitTimestamp: number;
}

/** Where `reset-offsets` moves a group's offsets. */
export type OffsetResetTarget =
  { to: 'earliest' } | { to: 'latest' } | { to: 'timestamp'; timestamp: number };

/**
 * Consumer groups as the broker runs them: the coordinator (membership, rebalances) together with
 * committed offsets in the meta store. One per plugin run; requests wait for {@link ready}.
 */
export class GroupService {
  readonly coordinator: GroupCoordinator;
  readonly offsets: OffsetStore;
  private readonly loading: Promise<void>;
  private readonly logger: Logger;
  private readonly topicWatch: MetaWatch;
  private readonly groupWatch: MetaWatch;
  private readonly stopHandOvers: () => void;

  constructor(private readonly options: GroupServiceOptions) {
    this.logger = options.logger ?? silentLogger;
    this.offsets = new OffsetStore(options.meta, this.logger);
    const rebalances = options.metrics?.counter({
      name: 'robustmq_kafka_group_rebalances_total',
      help: 'Consumer group rebalances started',
    });
    this.coordinator = new GroupCoordinator({
      minSessionTimeoutMs: options.minSessionTimeoutMs,
      maxSessionTimeoutMs: options.maxSessionTimeoutMs,
      initialRebalanceDelayMs: options.initialRebalanceDelayMs,
      maxGroupSize: options.maxGroupSize,
      clock: options.clock,
      logger: this.logger,
      onRebalance: () => rebalances?.inc(),
      onGroupChange: (groupId, group) => this.offsets.saveGroup(groupId, group),
    });
    // Other brokers' writes keep the copies of the groups they coordinate current here; the copy
    // of a group coordinated here is this broker's own, read back whenever it is taken over.
    this.groupWatch = options.meta.watch(GROUPS_PREFIX, (event) => {
      const groupId = OffsetStore.groupOf(event.type === 'put' ? event.entry.key : event.key);
      if (groupId !== null && !this.coordinates(groupId)) this.offsets.apply(event);
    });
    this.loading = this.offsets.load().then(() => {
      for (const groupId of this.offsets.groupIds()) {
        if (this.coordinates(groupId)) this.restore(groupId);
      }
    });
    // A failed load is reported to every request through ready(); do not crash on it here.
    this.loading.catch((error: unknown) =>
      this.logger.error({ err: error }, 'could not load consumer groups'),
    );
    this.stopHandOvers = options.onCoordinatorsChange?.(() => this.handOver()) ?? (() => {});
    // As in Kafka, a deleted topic takes the offsets committed for it along.
    this.topicWatch = options.meta.watch(TOPICS_PREFIX, (event) => {
      if (event.type !== 'delete') return;
      const topic = event.key.slice(TOPICS_PREFIX.length);
      this.forgetTopic(topic).catch((error: unknown) =>
        this.logger.error({ topic, err: error }, 'could not delete the offsets of a deleted topic'),
      );
    });
  }

  /** Resolves once groups and offsets are loaded from the meta store. */
  ready(): Promise<void> {
    return this.loading;
  }

  coordinates(groupId: string): boolean {
    return this.options.coordinates?.(groupId) ?? true;
  }

  /** The broker coordinating the group (null while none is live, or when not in a cluster). */
  coordinatorOf(groupId: string): number | null {
    return this.options.coordinatorOf?.(groupId) ?? null;
  }

  /**
   * Groups coordinated elsewhere, as their coordinator last stored them: ids with the record of
   * their last generation (null when only offsets were committed).
   */
  async elsewhere(): Promise<{ groupId: string; record: PersistedGroup | null }[]> {
    await this.ready();
    return this.offsets
      .groupIds()
      .filter((groupId) => !this.coordinates(groupId))
      .map((groupId) => ({ groupId, record: this.offsets.persistedGroup(groupId) }));
  }

  /** A group coordinated elsewhere, as its coordinator last stored it; null for an unknown one. */
  async storedGroup(groupId: string): Promise<{ record: PersistedGroup | null } | null> {
    await this.ready();
    const record = this.offsets.persistedGroup(groupId);
    if (record === null && this.offsets.list(groupId).length === 0) return null;
    return { record };
  }

  private restore(groupId: string): void {
    this.coordinator.restore(groupId, this.offsets.persistedGroup(groupId) ?? emptyGroupRecord(null, 0));
  }

  /**
   * Makes sure this broker coordinates the group before a request about it is served: NONE, or
   * NOT_COORDINATOR so that the client looks the coordinator up again. A group taken over from
   * another broker is first read back from the meta store, with what that broker last wrote.
   */
  async claim(groupId: string): Promise<number> {
    await this.ready();
    if (!this.coordinates(groupId)) return E.notCoordinator;
    if (this.coordinator.has(groupId) || !this.options.coordinates) return E.none;
    const known = await this.offsets.reloadGroup(groupId);
    if (!this.coordinates(groupId)) return E.notCoordinator;
    if (known) this.restore(groupId);
    return E.none;
  }

  /** Lets go of the groups another broker coordinates now (the cluster's brokers changed). */
  handOver(): void {
    for (const groupId of this.coordinator.groupIds()) {
      if (this.coordinates(groupId)) continue;
      this.coordinator.unload(groupId);
      this.logger.info({ group: groupId }, 'consumer group handed over to another broker');
    }
  }

  // ---- Offsets ---------------------------------------------------------------------------------

  /** OffsetCommit: validates the member, then stores each valid partition's offset durably. */
  async commitOffsets(input: OffsetCommitInput): Promise<{ name: string; partitions: PartitionError[] }[]> {
    await this.ready();
    const groupError = this.coordinator.validateCommit(
      input.groupId,
      input.memberId,
      input.groupInstanceId,
      input.generationId,
    );
    if (groupError !== E.none) {
      return input.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: groupError })),
      }));
    }
    const now = Date.now();
    const toStore: { topic: string; partition: number; committed: CommittedOffset }[] = [];
    const results: { name: string; partitions: PartitionError[] }[] = [];
    for (const topic of input.topics) {
      const partitions = await this.options.partitionCount(topic.name);
      const errors: PartitionError[] = [];
      for (const p of topic.partitions) {
        let errorCode: number = E.none;
        if (partitions === null || p.partitionIndex < 0 || p.partitionIndex >= partitions) {
          errorCode = E.unknownTopicOrPartition;
        } else if (Buffer.byteLength(p.committedMetadata ?? '') > MAX_METADATA_BYTES) {
          errorCode = E.offsetMetadataTooLarge;
        } else if (!Number.isSafeInteger(p.committedOffset)) {
          // Past 2^53 no log reaches, and the offset would read back as another (or not encode).
          errorCode = E.offsetOutOfRange;
        } else {
          toStore.push({
            topic: topic.name,
            partition: p.partitionIndex,
            committed: {
              offset: p.committedOffset,
              leaderEpoch: p.committedLeaderEpoch,
              metadata: p.committedMetadata ?? '',
              commitTimestamp: now,
            },
          });
        }
        errors.push({ partitionIndex: p.partitionIndex, errorCode });
      }
      results.push({ name: topic.name, partitions: errors });
    }
    if (toStore.length > 0) {
      this.coordinator.ensure(input.groupId);
      try {
        await this.offsets.commit(input.groupId, toStore);
      } catch (error) {
        this.logger.error({ group: input.groupId, err: error }, 'could not store committed offsets');
        const stored = new Set(toStore.map((s) => `${s.topic}/${s.partition}`));
        for (const r of results) {
          for (const p of r.partitions) {
            if (stored.has(`${r.name}/${p.partitionIndex}`)) p.errorCode = E.coordinatorNotAvailable;
          }
        }
      }
    }
    return results;
  }

  /**
   * OffsetFetch for one group: the named partitions (-1 where nothing is committed), or every
   * committed partition when `topics` is null.
   */
  async fetchOffsets(
    groupId: string,
    topics: readonly { name: string; partitionIndexes: readonly number[] }[] | null,
  ): Promise<{ name: string; partitions: FetchedOffset[] }[]> {
    await this.ready();
    const fetched = (topic: string, partitionIndex: number): FetchedOffset => {
      const committed = this.offsets.get(groupId, topic, partitionIndex);
      return {
        partitionIndex,
        committedOffset: committed?.offset ?? -1,
        committedLeaderEpoch: committed?.leaderEpoch ?? -1,
        metadata: committed?.metadata ?? '',
        errorCode: E.none,
      };
    };
    if (topics !== null) {
      return topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((p) => fetched(t.name, p)),
      }));
    }
    const byTopic = new Map<string, FetchedOffset[]>();
    for (const entry of this.offsets.list(groupId)) {
      let list = byTopic.get(entry.topic);
      if (!list) byTopic.set(entry.topic, (list = []));
      list.push(fetched(entry.topic, entry.partition));
    }
    return [...byTopic].map(([name, partitions]) => ({ name, partitions }));
  }

  /**
   * OffsetDelete: forgets committed offsets of topics the group does not consume now. A group in
   * use with a protocol other than "consumer" cannot have offsets deleted at all.
   */
  async deleteOffsets(
    groupId: string,
    topics: readonly { name: string; partitionIndexes: readonly number[] }[],
  ): Promise<{ errorCode: number; topics: { name: string; partitions: PartitionError[] }[] }> {
    await this.ready();
    const state = this.coordinator.state(groupId);
    if (state === null || state === 'Dead') return { errorCode: E.groupIdNotFound, topics: [] };
    const summary = this.coordinator.describe(groupId)!;
    let subscribed = new Set<string>();
    if (state !== 'Empty') {
      if (summary.protocolType !== 'consumer') return { errorCode: E.nonEmptyGroup, topics: [] };
      subscribed = new Set(
        this.coordinator.memberMetadata(groupId).flatMap((m) => subscribedTopics(m) ?? []),
      );
    }
    const toDelete: { topic: string; partition: number }[] = [];
    const result = topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex): PartitionError => {
        if (subscribed.has(t.name)) return { partitionIndex, errorCode: E.groupSubscribedToTopic };
        toDelete.push({ topic: t.name, partition: partitionIndex });
        return { partitionIndex, errorCode: E.none };
      }),
    }));
    await this.offsets.delete(groupId, toDelete);
    return { errorCode: E.none, topics: result };
  }

  // ---- Groups ----------------------------------------------------------------------------------

  /** ListGroups, optionally filtered by state names and protocol types (empty filter = all). */
  async listGroups(
    states: readonly string[] = [],
    types: readonly string[] = [],
  ): Promise<{ groupId: string; protocolType: string; state: GroupState }[]> {
    await this.ready();
    const lower = (list: readonly string[]) => new Set(list.map((s) => s.toLowerCase()));
    const wantedStates = lower(states);
    const wantedTypes = lower(types);
    const found: { groupId: string; protocolType: string; state: GroupState }[] = [];
    for (const groupId of this.coordinator.groupIds()) {
      const summary = this.coordinator.describe(groupId)!;
      found.push({ groupId, protocolType: summary.protocolType, state: summary.state });
    }
    // A group is loaded when a request first names it: one this broker coordinates that nobody
    // has asked about since a restart is listed as its coordinator last stored it.
    for (const groupId of this.offsets.groupIds()) {
      if (this.coordinator.has(groupId) || !this.coordinates(groupId)) continue;
      const record = this.offsets.persistedGroup(groupId);
      found.push({ groupId, protocolType: record?.protocolType ?? '', state: record?.state ?? 'Empty' });
    }
    return found
      .filter(({ state }) => wantedStates.size === 0 || wantedStates.has(state.toLowerCase()))
      .filter(({ protocolType }) => wantedTypes.size === 0 || wantedTypes.has(protocolType.toLowerCase()))
      .sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  /** DescribeGroups for one group; an unknown group is reported as Dead with no members. */
  async describeGroup(groupId: string): Promise<GroupSummary> {
    await this.ready();
    return (
      this.coordinator.describe(groupId) ?? {
        groupId,
        state: 'Dead',
        protocolType: '',
        protocolName: '',
        generationId: -1,
        leader: null,
        members: [],
      }
    );
  }

  /** DeleteGroups for one group: only an Empty group goes, with its offsets. */
  async deleteGroup(groupId: string): Promise<number> {
    await this.ready();
    const errorCode = this.coordinator.deleteGroup(groupId);
    if (errorCode !== E.none) return errorCode;
    await this.offsets.deleteGroup(groupId);
    this.logger.info({ group: groupId }, 'consumer group deleted');
    return E.none;
  }

  /** Each committed partition with the partition's end offset and the lag between them. */
  async lag(groupId: string): Promise<PartitionLag[]> {
    await this.ready();
    return Promise.all(
      this.offsets.list(groupId).map(async ({ topic, partition, committed }) => {
        const endOffset = await this.endOffset(topic, partition);
        return {
          topic,
          partition,
          committedOffset: committed.offset,
          endOffset,
          lag: endOffset === null ? null : Math.max(0, endOffset - committed.offset),
          metadata: committed.metadata,
          commitTimestamp: committed.commitTimestamp,
        };
      }),
    );
  }

  private async endOffset(topic: string, partition: number): Promise<number | null> {
    try {
      return (await this.options.storage.shardInfo(shardName(topic, partition))).nextOffset;
    } catch {
      return null;
    }
  }

  /**
   * Moves the group's offsets of every partition of `topic` (admin `reset-offsets`); only while the
   * group has no members, so no consumer overwrites them. Returns the new offsets.
   */
  async resetOffsets(
    groupId: string,
    topic: string,
    target: OffsetResetTarget,
  ): Promise<{ partition: number; offset: number }[]> {
    await this.ready();
    const state = this.coordinator.state(groupId);
    if (state !== null && state !== 'Empty') {
      throw new RobustMQError(ErrorCode.Conflict, `group ${groupId} is ${state}: stop its consumers first`);
    }
    const partitions = await this.options.partitionCount(topic);
    if (partitions === null) throw new RobustMQError(ErrorCode.NotFound, `topic ${topic} does not exist`);
    const offsets: { partition: number; offset: number }[] = [];
    for (let partition = 0; partition < partitions; partition++) {
      const shard = shardName(topic, partition);
      const info = await this.options.storage.shardInfo(shard);
      let offset = target.to === 'earliest' ? info.logStartOffset : info.nextOffset;
      if (target.to === 'timestamp') {
        offset = (await this.options.storage.offsetForTimestamp(shard, target.timestamp)) ?? info.nextOffset;
      }
      offsets.push({ partition, offset });
    }
    this.coordinator.ensure(groupId);
    const now = Date.now();
    await this.offsets.commit(
      groupId,
      offsets.map(({ partition, offset }) => ({
        topic,
        partition,
        committed: { offset, leaderEpoch: -1, metadata: '', commitTimestamp: now },
      })),
    );
    this.logger.info({ group: groupId, topic, to: target.to }, 'consumer group offsets reset');
    return offsets;
  }

  /** Drops every group's committed offsets of `topic`. */
  async forgetTopic(topic: string): Promise<void> {
    await this.ready();
    for (const groupId of this.offsets.groupIds()) {
      const partitions = this.offsets.list(groupId).filter((p) => p.topic === topic);
      if (partitions.length === 0) continue;
      await this.offsets.delete(groupId, partitions);
      this.logger.info({ group: groupId, topic }, 'offsets of a deleted topic removed');
    }
  }

  /** Ends parked joins and syncs, stops every timer and the topic watch. */
  stop(): void {
    this.stopHandOvers();
    this.groupWatch.close();
    this.topicWatch.close();
    this.coordinator.close();
  }
}
