import { ErrorCode, RobustMQError } from './errors.js';
import type { RecordCompression } from './records.js';

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
  /**
   * The brokers asked to lead each partition, most wanted first (Kafka's manual replica
   * assignment): partition `p` is led by the first live broker of `preferredLeaders[p]`. Without
   * it, for a partition past its end, or while none of its brokers is live, the brokers pick one
   * among themselves.
   */
  preferredLeaders?: readonly (readonly number[])[];
  /**
   * Set in the catalog entry while the topic is being deleted: when its deletion began (or was
   * last confirmed under way), ms since the epoch. The catalog hands out no such topic; the entry
   * stays until every shard is gone, so that no topic of that name is made in the meantime.
   */
  deletingSince?: number;
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

/** Prefix of the topic catalog in the meta store: one key per topic, `/topics/<name>`. */
export const TOPICS_PREFIX = '/topics/';

/** The meta key of a topic's catalog entry. */
export function topicKey(name: string): string {
  return TOPICS_PREFIX + name;
}

const TOPIC_COMPRESSIONS: ReadonlySet<string> = new Set(['gzip', 'snappy', 'lz4', 'zstd']);

/**
 * The codec a topic's `compression.type` asks batches to be stored with, for the batches a broker
 * encodes itself (MQTT and AMQP messages written into the topic): `producer` (Kafka's default) and
 * `uncompressed` mean none, as a producer that does not compress would send.
 */
export function storedCompression(topic: Topic): RecordCompression {
  const value = topic.configs['compression.type'];
  return value !== undefined && TOPIC_COMPRESSIONS.has(value) ? (value as RecordCompression) : 'none';
}

const STORAGE_CLASSES: readonly StorageClass[] = ['memory', 'file', 'rocksdb', 'tiered'];

/** Serialises a topic for the catalog (UTF-8 JSON), so every protocol and the admin API agree. */
export function encodeTopic(topic: Topic): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(topic));
}

function optionalLimit(value: unknown, field: string): number | null {
  if (value === null) return null;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  throw new RobustMQError(ErrorCode.Corrupt, `topic catalog entry: ${field} is not a count or null`);
}

/** Reads a catalog entry written by {@link encodeTopic}; throws `CORRUPT` for anything else. */
export function decodeTopic(value: Uint8Array): Topic {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(value));
  } catch (error) {
    throw new RobustMQError(ErrorCode.Corrupt, 'topic catalog entry is not JSON', { cause: error });
  }
  const entry = raw as Partial<Record<keyof Topic, unknown>>;
  if (
    typeof raw !== 'object' ||
    raw === null ||
    typeof entry.name !== 'string' ||
    typeof entry.partitions !== 'number' ||
    !Number.isInteger(entry.partitions) ||
    entry.partitions < 1 ||
    !STORAGE_CLASSES.includes(entry.storageClass as StorageClass) ||
    typeof entry.configs !== 'object' ||
    entry.configs === null ||
    typeof entry.createdAt !== 'number'
  ) {
    throw new RobustMQError(ErrorCode.Corrupt, 'topic catalog entry has missing or mistyped fields');
  }
  const configs: Record<string, string> = {};
  for (const [key, setting] of Object.entries(entry.configs)) {
    if (typeof setting !== 'string') {
      throw new RobustMQError(ErrorCode.Corrupt, `topic catalog entry: config ${key} is not a string`);
    }
    configs[key] = setting;
  }
  const topic: Topic = {
    name: entry.name,
    partitions: entry.partitions,
    storageClass: entry.storageClass as StorageClass,
    retentionMs: optionalLimit(entry.retentionMs, 'retentionMs'),
    retentionBytes: optionalLimit(entry.retentionBytes, 'retentionBytes'),
    configs,
    createdAt: entry.createdAt,
  };
  if (entry.preferredLeaders !== undefined) topic.preferredLeaders = brokerLists(entry.preferredLeaders);
  if (entry.deletingSince !== undefined) {
    if (typeof entry.deletingSince !== 'number') {
      throw new RobustMQError(ErrorCode.Corrupt, 'topic catalog entry: deletingSince is not a time');
    }
    topic.deletingSince = entry.deletingSince;
  }
  return topic;
}

function brokerLists(value: unknown): number[][] {
  if (
    !Array.isArray(value) ||
    !value.every((list) => Array.isArray(list) && list.every((id) => Number.isSafeInteger(id)))
  ) {
    throw new RobustMQError(
      ErrorCode.Corrupt,
      'topic catalog entry: preferredLeaders is not lists of broker ids',
    );
  }
  return value as number[][];
}
