import { ErrorCode, isRobustMQError, RobustMQError } from './errors.js';
import type { MetaStore } from './meta.js';
import type { ShardConfig, StorageEngine } from './storage.js';
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
}

export type NewTopic = Omit<Topic, 'createdAt'>;

function positiveInteger(name: string, value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < 1) {
    throw new RobustMQError(ErrorCode.InvalidArgument, `${name} must be a positive integer, got ${value}`);
  }
  return parsed;
}

/**
 * The shard settings a topic implies: its retention, and the Kafka configs that the storage layer
 * acts on (`segment.bytes`, `max.message.bytes`).
 */
export function shardConfigOf(topic: Topic): Partial<ShardConfig> {
  const config: Partial<ShardConfig> = {
    retentionMs: topic.retentionMs,
    retentionBytes: topic.retentionBytes,
  };
  const segmentBytes = topic.configs['segment.bytes'];
  if (segmentBytes !== undefined) config.segmentBytes = positiveInteger('segment.bytes', segmentBytes);
  const maxMessageBytes = topic.configs['max.message.bytes'];
  if (maxMessageBytes !== undefined) {
    config.maxBatchBytes = positiveInteger('max.message.bytes', maxMessageBytes);
  }
  return config;
}

/**
 * The topics of the unified namespace: catalog entries in the meta store (`/topics/<name>`) and
 * one storage shard per partition. Every protocol and the admin API create and alter topics
 * through this, so a topic made one way is the same topic seen every other way.
 */
export class TopicCatalog {
  constructor(
    private readonly meta: MetaStore,
    private readonly storage: StorageEngine,
  ) {}

  /** Adds a topic and its shards; `ALREADY_EXISTS` if the name is taken. */
  async create(topic: NewTopic): Promise<Topic> {
    validateTopicName(topic.name);
    if (!Number.isInteger(topic.partitions) || topic.partitions < 1) {
      throw new RobustMQError(ErrorCode.InvalidArgument, 'partitions must be a positive integer');
    }
    const created: Topic = { ...topic, configs: { ...topic.configs }, createdAt: Date.now() };
    const shardConfig = shardConfigOf(created);
    try {
      await this.meta.put(topicKey(topic.name), encodeTopic(created), { ifRevision: 0 });
    } catch (error) {
      if (isRobustMQError(error, ErrorCode.Conflict)) {
        throw new RobustMQError(ErrorCode.AlreadyExists, `topic ${topic.name} already exists`);
      }
      throw error;
    }
    await this.ensureShards(created, 0, shardConfig);
    return created;
  }

  async get(name: string): Promise<Topic | null> {
    const entry = await this.meta.get(topicKey(name));
    return entry ? decodeTopic(entry.value) : null;
  }

  /** Topics in name order, after `after`, at most `limit`. */
  async list(page: { after?: string; limit?: number } = {}): Promise<Topic[]> {
    const entries = await this.meta.list(TOPICS_PREFIX, {
      ...(page.after !== undefined && { startAfter: topicKey(page.after) }),
      ...(page.limit !== undefined && { limit: page.limit }),
    });
    return entries.map((entry) => decodeTopic(entry.value));
  }

  /** Applies `change` with compare-and-set, then brings the shards in line; `NOT_FOUND` if absent. */
  async alter(name: string, change: TopicChange): Promise<Topic> {
    for (;;) {
      const entry = await this.meta.get(topicKey(name));
      if (!entry) throw new RobustMQError(ErrorCode.NotFound, `topic ${name} does not exist`);
      const current = decodeTopic(entry.value);
      const next = applyChange(current, change);
      const shardConfig = shardConfigOf(next);
      try {
        await this.meta.put(topicKey(name), encodeTopic(next), { ifRevision: entry.modRevision });
      } catch (error) {
        if (isRobustMQError(error, ErrorCode.Conflict)) continue;
        throw error;
      }
      for (let partition = 0; partition < current.partitions; partition++) {
        await this.storage.updateShardConfig(shardName(name, partition), shardConfig);
      }
      await this.ensureShards(next, current.partitions, shardConfig);
      return next;
    }
  }

  /** Removes the topic and its shards; false when it did not exist. */
  async delete(name: string): Promise<boolean> {
    const entry = await this.meta.get(topicKey(name));
    if (!entry) return false;
    const topic = decodeTopic(entry.value);
    if (!(await this.meta.delete(topicKey(name), { ifRevision: entry.modRevision }))) return false;
    for (let partition = 0; partition < topic.partitions; partition++) {
      try {
        await this.storage.deleteShard(shardName(name, partition));
      } catch (error) {
        if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
      }
    }
    return true;
  }

  // A crash between the catalog write and the shards leaves shards missing; creating them again on
  // the next change (or tolerating ones that exist) makes every step safe to repeat.
  private async ensureShards(topic: Topic, from: number, config: Partial<ShardConfig>): Promise<void> {
    for (let partition = from; partition < topic.partitions; partition++) {
      try {
        await this.storage.createShard(shardName(topic.name, partition), config);
      } catch (error) {
        if (!isRobustMQError(error, ErrorCode.AlreadyExists)) throw error;
      }
    }
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
  const configs: Record<string, string> = { ...current.configs };
  for (const [key, value] of Object.entries(change.configs ?? {})) {
    if (value === null) delete configs[key];
    else configs[key] = value;
  }
  next.configs = configs;
  return next;
}
