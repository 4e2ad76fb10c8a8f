import { ErrorCode, RobustMQError } from './errors.js';

/** Where a topic's partitions are stored. */
export type StorageClass = 'memory' | 'file' | 'rocksdb' | 'tiered';

/** A topic of the unified namespace: what Kafka calls a topic and AMQP an address. */
export interface Topic {
  name: string;
  partitions: number;
  storageClass: StorageClass;
  /** Records older than this are deleted; null keeps them forever. */
  retentionMs: number | null;
  /** Each partition is trimmed to this size; null means no size limit. */
  retentionBytes: number | null;
  /** Further per-topic settings, in Kafka's names (`max.message.bytes`, `cleanup.policy`). */
  configs: Readonly<Record<string, string>>;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/**
 * Where one shard (a topic partition) lives. Every shard has a leader and may have replicas, so
 * that journal replication can be added without changing the model; `epoch` grows with each
 * leader change and fences writes from a deposed leader.
 */
export interface ShardPlacement {
  shard: string;
  leader: number;
  replicas: readonly number[];
  epoch: number;
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/**
 * Checks a stored topic name: 1 to 249 characters of `[A-Za-z0-9._-]`, not `.` or `..` (the rule
 * Kafka applies, so every stored topic is reachable from Kafka clients).
 */
export function validateTopicName(name: string): void {
  if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new RobustMQError(
      ErrorCode.InvalidArgument,
      `invalid topic name ${JSON.stringify(name)}: use 1 to 249 of A-Z a-z 0-9 . _ -`,
    );
  }
}

/** The shard that holds one partition of a topic: `<topic>/<partition>`. */
export function shardName(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

/** The inverse of {@link shardName}; null for a shard that is not a topic partition. */
export function parseShardName(shard: string): { topic: string; partition: number } | null {
  const slash = shard.lastIndexOf('/');
  if (slash <= 0) return null;
  const partition = Number(shard.slice(slash + 1));
  if (!Number.isInteger(partition) || partition < 0) return null;
  return { topic: shard.slice(0, slash), partition };
}
