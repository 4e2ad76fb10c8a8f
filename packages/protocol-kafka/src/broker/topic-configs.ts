import { DEFAULT_SHARD_CONFIG, type NewTopic, type Topic, type TopicChange } from '@robustmq/core';

/** Kafka's config value types, as DescribeConfigs v3+ reports them. */
export const ConfigType = { boolean: 1, string: 2, int: 3, short: 4, long: 5, double: 6, list: 7 } as const;
export type ConfigType = keyof typeof ConfigType;

/** What a config is and does here, as DescribeConfigs reports it. */
interface ConfigSpec {
  default: string;
  type: ConfigType;
  /** The broker config whose default a topic inherits (Kafka's topic config synonyms). */
  broker: string;
  /** Said to clients that ask for documentation: what the config does here, in our words. */
  doc: string;
}

/**
 * Kafka topic configs. Those that act change what storage does (retention, segment size and age,
 * largest batch) or what Produce accepts, stamps and stores (timestamps, in-sync replicas, the
 * compression of stored batches); the others are accepted and kept so clients that set them keep
 * working, and are reported back by DescribeConfigs. `list` configs are comma-separated lists, the
 * only ones IncrementalAlterConfigs APPENDs to.
 */
const TOPIC_CONFIGS: Readonly<Record<string, ConfigSpec>> = {
  'retention.ms': {
    default: String(DEFAULT_SHARD_CONFIG.retentionMs),
    type: 'long',
    broker: 'log.retention.ms',
    doc: 'Segments whose newest record is older than this many ms are deleted; -1 keeps them.',
  },
  'retention.bytes': {
    default: '-1',
    type: 'long',
    broker: 'log.retention.bytes',
    doc: 'The oldest segments of a partition are deleted while it holds more bytes than this; -1 for no limit.',
  },
  'segment.bytes': {
    default: String(DEFAULT_SHARD_CONFIG.segmentBytes),
    type: 'int',
    broker: 'log.segment.bytes',
    doc: "A partition's log starts a new segment file at this size; retention deletes whole segments.",
  },
  'max.message.bytes': {
    default: String(DEFAULT_SHARD_CONFIG.maxBatchBytes),
    type: 'int',
    broker: 'message.max.bytes',
    doc: 'The largest record batch Produce accepts, in bytes as stored.',
  },
  'cleanup.policy': {
    default: 'delete',
    type: 'list',
    broker: 'log.cleanup.policy',
    doc: 'Only delete: old segments are deleted by retention. Compaction is not offered.',
  },
  'compression.type': {
    default: 'producer',
    type: 'string',
    broker: 'compression.type',
    doc: 'The codec batches are stored with: producer keeps each as sent, the others (uncompressed, gzip, snappy, lz4, zstd) recompress on the broker.',
  },
  'delete.retention.ms': {
    default: '86400000',
    type: 'long',
    broker: 'log.cleaner.delete.retention.ms',
    doc: 'Kept and reported; no effect, as there is no compaction.',
  },
  'file.delete.delay.ms': {
    default: '60000',
    type: 'long',
    broker: 'log.segment.delete.delay.ms',
    doc: 'Kept and reported; no effect: deleted segments go at once.',
  },
  'flush.messages': {
    default: '9223372036854775807',
    type: 'long',
    broker: 'log.flush.interval.messages',
    doc: 'Kept and reported; no effect: storage syncs by its durability policy (group commit before acks=all is answered).',
  },
  'flush.ms': {
    default: '9223372036854775807',
    type: 'long',
    broker: 'log.flush.interval.ms',
    doc: 'Kept and reported; no effect: storage syncs by its durability policy (group commit before acks=all is answered).',
  },
  'index.interval.bytes': {
    default: '4096',
    type: 'int',
    broker: 'log.index.interval.bytes',
    doc: 'Kept and reported; no effect: storage spaces its offset index itself.',
  },
  'max.compaction.lag.ms': {
    default: '9223372036854775807',
    type: 'long',
    broker: 'log.cleaner.max.compaction.lag.ms',
    doc: 'Kept and reported; no effect, as there is no compaction.',
  },
  'message.timestamp.type': {
    default: 'CreateTime',
    type: 'string',
    broker: 'log.message.timestamp.type',
    doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's time.",
  },
  'message.timestamp.before.max.ms': {
    default: '9223372036854775807',
    type: 'long',
    broker: 'log.message.timestamp.before.max.ms',
    doc: "A CreateTime batch whose first or latest timestamp is more than this many ms before the broker's time is refused.",
  },
  'message.timestamp.after.max.ms': {
    default: '9223372036854775807',
    type: 'long',
    broker: 'log.message.timestamp.after.max.ms',
    doc: "A CreateTime batch whose first or latest timestamp is more than this many ms after the broker's time is refused.",
  },
  'message.timestamp.difference.max.ms': {
    default: '9223372036854775807',
    type: 'long',
    broker: 'log.message.timestamp.difference.max.ms',
    doc: "The older bound on both sides of the broker's time; the stricter of it and the before/after bounds applies.",
  },
  'message.downconversion.enable': {
    default: 'true',
    type: 'boolean',
    broker: 'log.message.downconversion.enable',
    doc: 'Kept and reported; no effect: batches are served in the format they were stored (magic 2).',
  },
  'min.cleanable.dirty.ratio': {
    default: '0.5',
    type: 'double',
    broker: 'log.cleaner.min.cleanable.ratio',
    doc: 'Kept and reported; no effect, as there is no compaction.',
  },
  'min.compaction.lag.ms': {
    default: '0',
    type: 'long',
    broker: 'log.cleaner.min.compaction.lag.ms',
    doc: 'Kept and reported; no effect, as there is no compaction.',
  },
  'min.insync.replicas': {
    default: '1',
    type: 'int',
    broker: 'min.insync.replicas',
    doc: 'acks=all is refused with NOT_ENOUGH_REPLICAS when this is above the one replica a partition has.',
  },
  preallocate: {
    default: 'false',
    type: 'boolean',
    broker: 'log.preallocate',
    doc: 'Kept and reported; no effect.',
  },
  'segment.index.bytes': {
    default: '10485760',
    type: 'int',
    broker: 'log.index.size.max.bytes',
    doc: 'Kept and reported; no effect: storage sizes its indexes itself.',
  },
  'segment.jitter.ms': {
    default: '0',
    type: 'long',
    broker: 'log.roll.jitter.ms',
    doc: 'Kept and reported; no effect: segments roll at segment.ms exactly, without jitter.',
  },
  'segment.ms': {
    default: String(DEFAULT_SHARD_CONFIG.segmentMs),
    type: 'long',
    broker: 'log.roll.ms',
    doc: "A partition's log starts a new segment file at the first append this many ms after the segment's first, so that retention.ms, which deletes whole segments, deletes the old records of a quiet partition too.",
  },
  'unclean.leader.election.enable': {
    default: 'false',
    type: 'boolean',
    broker: 'unclean.leader.election.enable',
    doc: 'Kept and reported; no effect: partitions have one replica, on shared storage.',
  },
};

/** Config names DescribeConfigs lists for a topic, in order. */
export const TOPIC_CONFIG_NAMES: readonly string[] = Object.keys(TOPIC_CONFIGS).sort();

/** A bad config: the Kafka error is INVALID_CONFIG with this message. */
export class TopicConfigError extends Error {}

/** Checks one config value; throws a TopicConfigError saying what is wrong. */
export function checkTopicConfig(name: string, value: string): void {
  const spec = TOPIC_CONFIGS[name];
  if (!spec) throw new TopicConfigError(`unknown topic config ${name}`);
  const bad = (why: string) => new TopicConfigError(`${name}=${value}: ${why}`);
  if ((spec.type === 'int' || spec.type === 'long') && !/^-?\d+$/.test(value)) throw bad('not an integer');
  if (spec.type === 'boolean' && value !== 'true' && value !== 'false') throw bad('not true or false');
  // The only fractional config is a ratio.
  if (spec.type === 'double' && !(Number(value) >= 0 && Number(value) <= 1)) throw bad('not between 0 and 1');
  const number = Number(value);
  switch (name) {
    case 'retention.ms':
    case 'retention.bytes':
      if (number < -1 || !Number.isSafeInteger(number)) throw bad('must be -1 (no limit) or a count');
      break;
    case 'segment.bytes':
    case 'max.message.bytes':
      if (number < 1 || !Number.isSafeInteger(number)) throw bad('must be a positive count of bytes');
      break;
    case 'segment.ms':
      if (number < 1 || !Number.isSafeInteger(number)) throw bad('must be a positive count of ms');
      break;
    case 'cleanup.policy':
      if (value !== 'delete') throw bad('only cleanup.policy=delete is supported (no compaction)');
      break;
    case 'message.timestamp.type':
      if (value !== 'CreateTime' && value !== 'LogAppendTime')
        throw bad('must be CreateTime or LogAppendTime');
      break;
    case 'compression.type':
      if (!['producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd'].includes(value)) {
        throw bad('unknown compression type');
      }
      break;
  }
}

function limit(value: string): number | null {
  const number = Number(value);
  return number < 0 ? null : number;
}

/** The settings of a topic as Kafka configs: explicitly set ones only. */
export function explicitConfigs(topic: Topic): Map<string, string> {
  const out = new Map<string, string>(Object.entries(topic.configs));
  if (topic.retentionMs !== DEFAULT_SHARD_CONFIG.retentionMs)
    out.set('retention.ms', String(topic.retentionMs ?? -1));
  if (topic.retentionBytes !== null) out.set('retention.bytes', String(topic.retentionBytes));
  return out;
}

/** Whether a config is a comma-separated list. */
export function isListConfig(name: string): boolean {
  return TOPIC_CONFIGS[name]?.type === 'list';
}

/** A topic config's type and what it does here; null for one this broker does not know. */
export function topicConfigSpec(name: string): { type: ConfigType; doc: string } | null {
  const spec = TOPIC_CONFIGS[name];
  return spec ? { type: spec.type, doc: spec.doc } : null;
}

/** The broker config a topic config defaults to, and its value; null for an unknown config. */
export function brokerDefaultOf(name: string): { name: string; value: string } | null {
  const spec = TOPIC_CONFIGS[name];
  return spec ? { name: spec.broker, value: spec.default } : null;
}

/**
 * The broker configs topics take their defaults from (Kafka's `log.retention.ms` for
 * `retention.ms`, and so on), each with that default, so a broker's DescribeConfigs shows them.
 */
export function brokerTopicDefaults(): Array<{ name: string; value: string; type: ConfigType; doc: string }> {
  return Object.entries(TOPIC_CONFIGS).map(([topicName, spec]) => ({
    name: spec.broker,
    value: spec.default,
    type: spec.type,
    doc: `The default of the topic config ${topicName}: ${spec.doc}`,
  }));
}

/** The value of one config of a topic and whether it is the default. */
export function configValue(topic: Topic, name: string): { value: string; isDefault: boolean } | null {
  const spec = TOPIC_CONFIGS[name];
  const set = explicitConfigs(topic).get(name);
  if (set !== undefined) return { value: set, isDefault: false };
  if (!spec) return null;
  return { value: spec.default, isDefault: true };
}

/** A new topic from CreateTopics' configs (already checked). */
export function newTopicWith(
  name: string,
  partitions: number,
  configs: ReadonlyMap<string, string>,
): NewTopic {
  const rest: Record<string, string> = {};
  for (const [key, value] of configs)
    if (key !== 'retention.ms' && key !== 'retention.bytes') rest[key] = value;
  const retentionMs = configs.get('retention.ms');
  const retentionBytes = configs.get('retention.bytes');
  return {
    name,
    partitions,
    storageClass: 'file',
    retentionMs: retentionMs === undefined ? DEFAULT_SHARD_CONFIG.retentionMs : limit(retentionMs),
    retentionBytes: retentionBytes === undefined ? null : limit(retentionBytes),
    configs: rest,
  };
}

/**
 * The change that makes a topic's explicit configs exactly `wanted` (values already checked):
 * configs left out go back to their defaults.
 */
export function changeTo(topic: Topic, wanted: ReadonlyMap<string, string>): TopicChange {
  const configs: Record<string, string | null> = {};
  for (const key of Object.keys(topic.configs)) configs[key] = null;
  for (const [key, value] of wanted) {
    if (key !== 'retention.ms' && key !== 'retention.bytes') configs[key] = value;
  }
  const retentionMs = wanted.get('retention.ms');
  const retentionBytes = wanted.get('retention.bytes');
  return {
    retentionMs: retentionMs === undefined ? DEFAULT_SHARD_CONFIG.retentionMs : limit(retentionMs),
    retentionBytes: retentionBytes === undefined ? null : limit(retentionBytes),
    configs,
  };
}
