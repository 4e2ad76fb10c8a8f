import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, isRobustMQError, RobustMQError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import type { MetaEntry, MetaStore } from './meta.js';
import { DEFAULT_SHARD_CONFIG, type ShardConfig, type StorageEngine } from './storage.js';
import {
  decodeTopic,
  encodeTopic,
  shardName,
  topicKey,
  TOPICS_PREFIX,
  validateTopicName,
  type Topic,
} from './topics.js';

/** What may change on an existing topic. Partitions only grow; a config set to null is removed. */
export interface TopicChange {
  partitions?: number;
  retentionMs?: number | null;
  retentionBytes?: number | null;
  configs?: Readonly<Record<string, string | null>>;
  /** Replaces the brokers asked to lead each partition (see {@link Topic.preferredLeaders}). */
  preferredLeaders?: readonly (readonly number[])[];
}

export type NewTopic = Omit<Topic, 'createdAt'>;

function positiveInteger(name: string, value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < 1) {
    throw new RobustMQError(ErrorCode.InvalidArgument, `${name} must be a positive integer, got ${value}`);
  }
  return parsed;
}

/** The Kafka topic configs storage acts on, and the shard setting each sets. */
const SHARD_SETTINGS = [
  ['segment.bytes', 'segmentBytes'],
  ['segment.ms', 'segmentMs'],
  ['max.message.bytes', 'maxBatchBytes'],
] as const;

/**
 * The shard settings a topic implies: its retention, and the Kafka configs that the storage layer
 * acts on. Given the topic as it was before a change, a config removed by it sets its shard
 * setting back to the default (the value DescribeConfigs then reports).
 */
export function shardConfigOf(topic: Topic, before?: Topic): Partial<ShardConfig> {
  const config: Partial<ShardConfig> = {
    retentionMs: topic.retentionMs,
    retentionBytes: topic.retentionBytes,
  };
  for (const [name, setting] of SHARD_SETTINGS) {
    const value = topic.configs[name];
    if (value !== undefined) config[setting] = positiveInteger(name, value);
    else if (before?.configs[name] !== undefined)
      Object.assign(config, { [setting]: DEFAULT_SHARD_CONFIG[setting] });
  }
  return config;
}

/** Partitions a topic may have when the catalog is not given another limit. */
export const DEFAULT_MAX_PARTITIONS = 10_000;

/**
 * A topic created less than this long ago, since the catalog was made, whose shards are missing is
 * taken for one another node is still creating.
 */
const JUST_CREATED_MS = 60_000;

/** Shards looked up at once when checking that a topic has all of them. */
const SHARD_CHECK_CONCURRENCY = 32;

/** A node removing a deleted topic's shards confirms its deletion mark at least this often. */
const DELETION_CONFIRM_MS = 10_000;
/**
 * A deletion mark not confirmed for this long was left by a node that stopped part-way; the next
 * creation or deletion of that name finishes it. Well above {@link DELETION_CONFIRM_MS}, for
 * clocks that disagree a little.
 */
const DELETION_ABANDONED_MS = 60_000;
/** How long a creation waits for another node's deletion of the name before it gives up. */
const DELETION_WAIT_MS = 5_000;
/** How often a creation or deletion waiting for another node's deletion looks again. */
const DELETION_POLL_MS = 25;

export interface TopicCatalogOptions {
  /**
   * The most partitions a topic may have; creating or growing a topic beyond it is refused with
   * INVALID_ARGUMENT before anything is made. Every partition is a storage shard, so one request
   * for millions would otherwise keep the node creating shards until its disk is full. Defaults to
   * {@link DEFAULT_MAX_PARTITIONS}.
   */
  maxPartitions?: number;
  /** Where the catalog reports shards it had to create again and roll-backs that failed. */
  logger?: Logger;
}

/**
 * The topics of the unified namespace: catalog entries in the meta store (`/topics/<name>`) and
 * one storage shard per partition. Every protocol and the admin API create and alter topics
 * through this, so a topic made one way is the same topic seen every other way.
 *
 * A creation that fails part-way is undone (the entry, then the shards made), so it can be tried
 * again. A deletion first marks the entry, removes the shards, then the entry: until then the name
 * cannot be taken, so a topic created at once on another node never gets (or loses) a shard of the
 * deleted one; such a creation waits for the deletion. A topic found without some of its shards
 * (an engine that keeps nothing across restarts, a crash between the catalog write and the
 * shards) gets empty ones the first time this catalog looks it up.
 */
export class TopicCatalog {
  /** The most partitions a topic may have (see {@link TopicCatalogOptions.maxPartitions}). */
  readonly maxPartitions: number;
  private readonly logger: Logger;
  /** Topics whose shards were all there, by the revision of the catalog entry then. */
  private readonly whole = new Map<string, number>();
  /** When this catalog was made: topics created before it may have lost shards in a restart. */
  private readonly openedAt = Date.now();
  /** Shard checks under way, by `<name>@<revision>`, so that lookups at once share one. */
  private readonly checks = new Map<string, Promise<void>>();
  /**
   * The last creation, change or deletion of each topic under way in this catalog. They run one
   * at a time per topic, so that none makes or removes shards under another (a deletion would
   * otherwise miss the partitions a change adds, or remove those of a topic created again at once);
   * lookups wait for them rather than repair half a topic.
   */
  private readonly changing = new Map<string, Promise<unknown>>();
  /**
   * Deletions this catalog began and could not finish (storage failed), by topic name and the
   * revision of the mark: the next creation or deletion of the name here finishes them at once.
   */
  private readonly unfinished = new Map<string, number>();

  constructor(
    private readonly meta: MetaStore,
    private readonly storage: StorageEngine,
    options: TopicCatalogOptions = {},
  ) {
    const maxPartitions = options.maxPartitions ?? DEFAULT_MAX_PARTITIONS;
    if (!Number.isSafeInteger(maxPartitions) || maxPartitions < 1) {
      throw new RobustMQError(ErrorCode.InvalidArgument, 'maxPartitions must be a positive integer');
    }
    this.maxPartitions = maxPartitions;
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Adds a topic and its shards; `ALREADY_EXISTS` if the name is taken, `INVALID_ARGUMENT` for a
   * bad name or partition count. When a shard cannot be created, what was made is removed again
   * and the error is thrown.
   */
  async create(topic: NewTopic): Promise<Topic> {
    validateTopicName(topic.name);
    this.checkPartitions(topic.name, topic.partitions);
    // The engine decides where the shards go; the topic says what is true of them.
    const created: Topic = {
      ...topic,
      storageClass: this.storage.storageClass ?? topic.storageClass,
      configs: { ...topic.configs },
      createdAt: Date.now(),
    };
    const shardConfig = shardConfigOf(created);
    return this.oneAtATime(topic.name, async () => {
      const revision = await this.enter(created);
      await this.createShards(created, revision, shardConfig);
      return created;
    });
  }

  /**
   * Writes a new topic's entry and returns its revision. While another node deletes a topic of
   * that name, waits for it (and finishes one that node abandoned); `ALREADY_EXISTS` if the name
   * is taken, or still being deleted after {@link DELETION_WAIT_MS}.
   */
  private async enter(topic: Topic): Promise<number> {
    const key = topicKey(topic.name);
    const giveUpAt = Date.now() + DELETION_WAIT_MS;
    for (;;) {
      try {
        return await this.meta.put(key, encodeTopic(topic), { ifRevision: 0 });
      } catch (error) {
        if (!isRobustMQError(error, ErrorCode.Conflict)) throw error;
      }
      const entry = await this.meta.get(key);
      if (entry === null) continue;
      const there = decodeTopic(entry.value);
      if (there.deletingSince === undefined) {
        throw new RobustMQError(ErrorCode.AlreadyExists, `topic ${topic.name} already exists`);
      }
      if (await this.finishAbandonedDeletion(entry, there)) continue;
      if (Date.now() >= giveUpAt) {
        throw new RobustMQError(
          ErrorCode.AlreadyExists,
          `topic ${topic.name} is being deleted; create it again once that is done`,
        );
      }
      await sleep(DELETION_POLL_MS);
    }
  }

  /** The topic named `name`, or null; creates any of its shards that are missing. */
  async get(name: string): Promise<Topic | null> {
    await settled(this.changing.get(name));
    const entry = await this.meta.get(topicKey(name));
    return entry ? this.withShards(entry) : null;
  }

  /** Topics in name order, after `after`, at most `limit`; creates shards that are missing. */
  async list(page: { after?: string; limit?: number } = {}): Promise<Topic[]> {
    const entries = await this.meta.list(TOPICS_PREFIX, {
      ...(page.after !== undefined && { startAfter: topicKey(page.after) }),
      ...(page.limit !== undefined && { limit: page.limit }),
    });
    const topics: Topic[] = [];
    for (const entry of entries) {
      const name = entry.key.slice(TOPICS_PREFIX.length);
      if (!this.changing.has(name)) {
        const topic = await this.withShards(entry);
        if (topic !== null) topics.push(topic);
        continue;
      }
      // Being created, changed or deleted here: the topic once that is done, not half of it.
      const now = await this.get(name);
      if (now !== null) topics.push(now);
    }
    return topics;
  }

  /** Applies `change` with compare-and-set, then brings the shards in line; `NOT_FOUND` if absent. */
  alter(name: string, change: TopicChange): Promise<Topic> {
    return this.oneAtATime(name, () => this.applyAlter(name, change));
  }

  private async applyAlter(name: string, change: TopicChange): Promise<Topic> {
    for (;;) {
      const entry = await this.meta.get(topicKey(name));
      if (!entry) throw new RobustMQError(ErrorCode.NotFound, `topic ${name} does not exist`);
      const current = decodeTopic(entry.value);
      if (current.deletingSince !== undefined) {
        throw new RobustMQError(ErrorCode.NotFound, `topic ${name} is being deleted`);
      }
      const next = applyChange(current, change);
      if (next.partitions > current.partitions) this.checkPartitions(name, next.partitions);
      const shardConfig = shardConfigOf(next, current);
      const putBack = await this.trySettings(name, current, next, shardConfig);
      let revision: number;
      try {
        revision = await this.meta.put(topicKey(name), encodeTopic(next), { ifRevision: entry.modRevision });
      } catch (error) {
        await putBack();
        if (isRobustMQError(error, ErrorCode.Conflict)) continue;
        throw error;
      }
      for (let partition = 0; partition < current.partitions; partition++) {
        const shard = shardName(name, partition);
        try {
          await this.storage.updateShardConfig(shard, shardConfig);
        } catch (error) {
          if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
          await this.createShard(shard, shardConfig);
        }
      }
      // Partitions not made here for a failure are made on a later lookup.
      for (let partition = current.partitions; partition < next.partitions; partition++) {
        await this.createShard(shardName(name, partition), shardConfig);
      }
      this.whole.set(name, revision);
      return next;
    }
  }

  /**
   * Has the storage take a topic's new shard settings on its first partition before the catalog
   * records them, so that a setting the engine refuses (beyond its own limits) fails the change
   * with nothing recorded. Returns how to put the partition back if the record is not written.
   */
  private async trySettings(
    name: string,
    current: Topic,
    next: Topic,
    settings: Partial<ShardConfig>,
  ): Promise<() => Promise<void>> {
    const shard = shardName(name, 0);
    try {
      await this.storage.updateShardConfig(shard, settings);
    } catch (error) {
      // A partition missing here is made with the new settings below.
      if (isRobustMQError(error, ErrorCode.NotFound)) return async () => {};
      throw error;
    }
    return async () => {
      try {
        await this.storage.updateShardConfig(shard, shardConfigOf(current, next));
      } catch (error) {
        this.logger.warn(
          { err: error, shard },
          'shard settings of a topic change not recorded were not put back',
        );
      }
    };
  }

  /** Removes the topic and its shards; false when it did not exist. */
  delete(name: string): Promise<boolean> {
    return this.oneAtATime(name, () => this.applyDelete(name));
  }

  private async applyDelete(name: string): Promise<boolean> {
    for (;;) {
      const entry = await this.meta.get(topicKey(name));
      if (!entry) return false;
      const topic = decodeTopic(entry.value);
      if (topic.deletingSince !== undefined) {
        // Another node is deleting it: this deletion finds it gone once that one is done.
        if (await this.finishAbandonedDeletion(entry, topic)) return true;
        await sleep(DELETION_POLL_MS);
        continue;
      }
      const marked = await this.markDeleting(topic, entry.modRevision);
      // Changed or deleted since it was read (by another node): look again.
      if (marked === null) continue;
      await this.removeDeleted(topic, marked);
      return true;
    }
  }

  /**
   * Writes the deletion mark on a topic's entry at `revision`; the entry's new revision, or null
   * when it changed meanwhile.
   */
  private async markDeleting(topic: Topic, revision: number): Promise<number | null> {
    try {
      return await this.meta.put(topicKey(topic.name), encodeTopic({ ...topic, deletingSince: Date.now() }), {
        ifRevision: revision,
      });
    } catch (error) {
      if (isRobustMQError(error, ErrorCode.Conflict)) return null;
      throw error;
    }
  }

  /**
   * Removes the shards of a topic whose entry carries this node's deletion mark at `revision`,
   * then the entry. Confirms the mark as it goes, so that other nodes do not take the deletion for
   * abandoned; stops when another node has taken it over.
   */
  private async removeDeleted(topic: Topic, revision: number): Promise<void> {
    this.whole.delete(topic.name);
    this.unfinished.delete(topic.name);
    let marked = revision;
    let confirmedAt = Date.now();
    try {
      for (let partition = 0; partition < topic.partitions; partition++) {
        if (Date.now() - confirmedAt >= DELETION_CONFIRM_MS) {
          const confirmed = await this.markDeleting(topic, marked);
          if (confirmed === null) return;
          marked = confirmed;
          confirmedAt = Date.now();
        }
        try {
          await this.storage.deleteShard(shardName(topic.name, partition));
        } catch (error) {
          if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
        }
      }
      await this.meta.delete(topicKey(topic.name), { ifRevision: marked });
    } catch (error) {
      // Taken over by another node, which removes the entry itself.
      if (isRobustMQError(error, ErrorCode.Conflict)) return;
      this.unfinished.set(topic.name, marked);
      throw error;
    }
  }

  /**
   * Finishes the deletion marked on `entry` when it was left unfinished here, or when the node
   * that began it has not confirmed it for {@link DELETION_ABANDONED_MS} (it stopped part-way);
   * false when it is still under way.
   */
  private async finishAbandonedDeletion(entry: MetaEntry, topic: Topic): Promise<boolean> {
    const leftHere = this.unfinished.get(topic.name) === entry.modRevision;
    if (!leftHere && Date.now() - topic.deletingSince! < DELETION_ABANDONED_MS) return false;
    const marked = await this.markDeleting(topic, entry.modRevision);
    if (marked === null) return false;
    if (!leftHere) {
      this.logger.warn(
        { topic: topic.name, since: new Date(topic.deletingSince!).toISOString() },
        'finishing the deletion of a topic that a stopped node began',
      );
    }
    await this.removeDeleted(topic, marked);
    return true;
  }

  /**
   * Finishes, without waiting, a deletion that a stopped node left, found by a lookup or a listing
   * (Kafka clients list every topic now and then), so its shards do not stay for good.
   */
  private finishInBackground(topic: Topic): void {
    if (this.changing.has(topic.name) || Date.now() - topic.deletingSince! < DELETION_ABANDONED_MS) return;
    this.delete(topic.name).catch((error: unknown) =>
      this.logger.warn({ err: error, topic: topic.name }, 'could not finish the deletion of a topic'),
    );
  }

  /** Runs `change` of topic `name` once the changes of it already under way here are done. */
  private async oneAtATime<T>(name: string, change: () => Promise<T>): Promise<T> {
    const running = settled(this.changing.get(name)).then(change);
    this.changing.set(name, running);
    try {
      return await running;
    } finally {
      // Later changes wait for this one, so the last one queued stands for all of them.
      if (this.changing.get(name) === running) this.changing.delete(name);
    }
  }

  private checkPartitions(name: string, partitions: number): void {
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new RobustMQError(ErrorCode.InvalidArgument, 'partitions must be a positive integer');
    }
    if (partitions > this.maxPartitions) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `topic ${name}: ${partitions} partitions asked for, but a topic may have at most ${this.maxPartitions} partitions`,
      );
    }
  }

  /** Creates a shard; one that exists already is fine (made by an earlier try or a repair). */
  private async createShard(shard: string, config: Partial<ShardConfig>): Promise<boolean> {
    try {
      await this.storage.createShard(shard, config);
      return true;
    } catch (error) {
      if (isRobustMQError(error, ErrorCode.AlreadyExists)) return false;
      throw error;
    }
  }

  /** The shards of a topic just entered at `revision`; on a failure the creation is undone. */
  private async createShards(topic: Topic, revision: number, config: Partial<ShardConfig>): Promise<void> {
    let partition = 0;
    try {
      for (; partition < topic.partitions; partition++) {
        await this.createShard(shardName(topic.name, partition), config);
      }
    } catch (error) {
      await this.undoCreate(topic, revision, partition);
      throw error;
    }
    this.whole.set(topic.name, revision);
  }

  /**
   * Removes the entry of a topic whose creation failed at partition `failedAt`, then the shards up
   * to there. The entry goes first, as in delete: a repair that made one of those shards meanwhile
   * finds the entry gone and removes its shard itself.
   */
  private async undoCreate(topic: Topic, revision: number, failedAt: number): Promise<void> {
    let removed: boolean;
    try {
      removed = await this.meta.delete(topicKey(topic.name), { ifRevision: revision });
    } catch (error) {
      // Changed or deleted meanwhile by someone else, who now owns the shards.
      if (isRobustMQError(error, ErrorCode.Conflict)) return;
      this.logger.error(
        { err: error, topic: topic.name },
        'could not undo a failed topic creation; its missing shards are made on its next lookup',
      );
      return;
    }
    if (!removed) return;
    const partitions = Array.from({ length: Math.min(failedAt + 1, topic.partitions) }, (_, p) => p);
    await this.removeShards(topic.name, partitions);
  }

  /** Deletes the given partitions' shards, going on past failures, which are logged. */
  private async removeShards(name: string, partitions: readonly number[]): Promise<void> {
    for (const partition of partitions) {
      try {
        await this.storage.deleteShard(shardName(name, partition));
      } catch (error) {
        if (isRobustMQError(error, ErrorCode.NotFound)) continue;
        this.logger.error(
          { err: error, topic: name, partition },
          'could not remove the shard of a topic that does not exist',
        );
      }
    }
  }

  /**
   * The topic of a catalog entry, after making sure (once per revision) all its shards exist;
   * null for a topic being deleted.
   */
  private async withShards(entry: MetaEntry): Promise<Topic | null> {
    const topic = decodeTopic(entry.value);
    if (topic.deletingSince !== undefined) {
      this.finishInBackground(topic);
      return null;
    }
    if (this.whole.get(topic.name) === entry.modRevision) return topic;
    const key = `${topic.name}@${entry.modRevision}`;
    let check = this.checks.get(key);
    if (check === undefined) {
      check = this.repair(topic, entry).finally(() => this.checks.delete(key));
      this.checks.set(key, check);
    }
    await check;
    return topic;
  }

  /**
   * Creates, empty, the shards a topic lacks. Never throws: when the storage cannot tell or
   * cannot create now, the next lookup tries again, and the partitions keep answering NOT_FOUND.
   */
  private async repair(topic: Topic, entry: MetaEntry): Promise<void> {
    if (topic.partitions > this.maxPartitions) {
      // Entered before there was a limit, or under a higher one: too many to check one by one.
      this.logger.warn(
        { topic: topic.name, partitions: topic.partitions, maxPartitions: this.maxPartitions },
        'topic has more partitions than allowed; its shards are not checked',
      );
      this.whole.set(topic.name, entry.modRevision);
      return;
    }
    try {
      const missing = await this.missingPartitions(topic);
      if (missing.length > 0) {
        const fields = { topic: topic.name, partitions: missing.length, first: missing[0] };
        if (topic.createdAt >= this.openedAt && Date.now() - topic.createdAt < JUST_CREATED_MS) {
          // Created since this node started, a moment ago: most likely another node of the
          // cluster is making them now, and nothing was lost.
          this.logger.info(fields, 'partitions of a topic just created not there yet; creating them here');
        } else {
          this.logger.warn(
            fields,
            'topic partitions without a shard (lost with a restart or a failure); creating empty ones',
          );
        }
        const config = shardConfigOf(topic);
        const made: number[] = [];
        for (const partition of missing) {
          if (await this.createShard(shardName(topic.name, partition), config)) made.push(partition);
        }
        const now = await this.meta.get(topicKey(topic.name));
        if (
          now === null ||
          now.createRevision !== entry.createRevision ||
          decodeTopic(now.value).deletingSince !== undefined
        ) {
          // Deleted, or its creation undone, meanwhile: the shards made here would be left over.
          await this.removeShards(topic.name, made);
          return;
        }
      }
      this.whole.set(topic.name, entry.modRevision);
    } catch (error) {
      this.logger.warn({ err: error, topic: topic.name }, 'could not check the shards of a topic');
    }
  }

  /** The partitions of `topic` whose shard the storage does not have. */
  private async missingPartitions(topic: Topic): Promise<number[]> {
    const missing: number[] = [];
    for (let from = 0; from < topic.partitions; from += SHARD_CHECK_CONCURRENCY) {
      const count = Math.min(SHARD_CHECK_CONCURRENCY, topic.partitions - from);
      const found = await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          try {
            await this.storage.shardInfo(shardName(topic.name, from + i));
            return true;
          } catch (error) {
            if (isRobustMQError(error, ErrorCode.NotFound)) return false;
            throw error;
          }
        }),
      );
      found.forEach((there, i) => {
        if (!there) missing.push(from + i);
      });
    }
    return missing;
  }
}

/** Waits for `running` to settle, whichever way. */
async function settled(running: Promise<unknown> | undefined): Promise<void> {
  try {
    await running;
  } catch {
    // Its own caller handles the failure.
  }
}

function applyChange(current: Topic, change: TopicChange): Topic {
  const next: Topic = { ...current, configs: { ...current.configs } };
  if (change.partitions !== undefined) {
    if (!Number.isInteger(change.partitions) || change.partitions < current.partitions) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `partitions can only grow (topic ${current.name} has ${current.partitions})`,
      );
    }
    next.partitions = change.partitions;
  }
  if (change.retentionMs !== undefined) next.retentionMs = change.retentionMs;
  if (change.retentionBytes !== undefined) next.retentionBytes = change.retentionBytes;
  if (change.preferredLeaders !== undefined) next.preferredLeaders = change.preferredLeaders;
  const configs: Record<string, string> = { ...current.configs };
  for (const [key, value] of Object.entries(change.configs ?? {})) {
    if (value === null) delete configs[key];
    else configs[key] = value;
  }
  next.configs = configs;
  return next;
}
