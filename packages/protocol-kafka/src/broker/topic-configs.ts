import { DEFAULT_SHARD_CONFIG, type NewTopic, type Topic, type TopicChange } from '@robustmq/core';

/**
 * Kafka topic configs. Those marked `acts` change what storage does (retention, segment size,
 * largest batch) or what Produce accepts, stamps and stores (timestamps, in-sync replicas, the
 * compression of stored batches); the others are
 * accepted and kept so clients that set them keep working, and are reported back by DescribeConfigs.
 * `broker` is the broker config whose default a topic inherits (Kafka's topic config synonyms);
 * `list` configs are comma-separated lists, the only ones IncrementalAlterConfigs APPENDs to.
 */
const TOPIC_CONFIGS: Readonly<
  Record<
    string,
    { default: string; kind: 'int' | 'string' | 'bool' | 'ratio' | 'list'; broker: string; acts?: true }
  >
> = {
  'retention.ms': {
    default: String(DEFAULT_SHARD_CONFIG.retentionMs),
    kind: 'int',
    broker: 'log.retention.ms',
    acts: true,
  },
  'retention.bytes': { default: '-1', kind: 'int', broker: 'log.retention.bytes', acts: true },
  'segment.bytes': {
    default: String(DEFAULT_SHARD_CONFIG.segmentBytes),
    kind: 'int',
    broker: 'log.segment.bytes',
    acts: true,
  },
  'max.message.bytes': {
    default: String(DEFAULT_SHARD_CONFIG.maxBatchBytes),
    kind: 'int',
    broker: 'message.max.bytes',
    acts: true,
  },
  'cleanup.policy': { default: 'delete', kind: 'list', broker: 'log.cleanup.policy', acts: true },
  'compression.type': { default: 'producer', kind: 'string', broker: 'compression.type', acts: true },
  'delete.retention.ms': { default: '86400000', kind: 'int', broker: 'log.cleaner.delete.retention.ms' },
  'file.delete.delay.ms': { default: '60000', kind: 'int', broker: 'log.segment.delete.delay.ms' },
  'flush.messages': {
    default: '9223372036854775807',
    kind: 'int',
    broker: 'log.flush.interval.messages',
  },
  'flush.ms': { default: '9223372036854775807', kind: 'int', broker: 'log.flush.interval.ms' },
  'index.interval.bytes': { default: '4096', kind: 'int', broker: 'log.index.interval.bytes' },
  'max.compaction.lag.ms': {
    default: '9223372036854775807',
    kind: 'int',
    broker: 'log.cleaner.max.compaction.lag.ms',
  },
  'message.timestamp.type': {
    default: 'CreateTime',
    kind: 'string',
    broker: 'log.message.timestamp.type',
    acts: true,
  },
  'message.timestamp.before.max.ms': {
    default: '9223372036854775807',
    kind: 'int',
    broker: 'log.message.timestamp.before.max.ms',
    acts: true,
  },
  'message.timestamp.after.max.ms': {
    default: '9223372036854775807',
    kind: 'int',
    broker: 'log.message.timestamp.after.max.ms',
    acts: true,
  },
  'message.timestamp.difference.max.ms': {
    default: '9223372036854775807',
    kind: 'int',
    broker: 'log.message.timestamp.difference.max.ms',
    acts: true,
  },
  'message.downconversion.enable': {
    default: 'true',
    kind: 'bool',
    broker: 'log.message.downconversion.enable',
  },
  'min.cleanable.dirty.ratio': {
    default: '0.5',
    kind: 'ratio',
    broker: 'log.cleaner.min.cleanable.ratio',
  },
  'min.compaction.lag.ms': { default: '0', kind: 'int', broker: 'log.cleaner.min.compaction.lag.ms' },
  'min.insync.replicas': { default: '1', kind: 'int', broker: 'min.insync.replicas', acts: true },
  preallocate: { default: 'false', kind: 'bool', broker: 'log.preallocate' },
  'segment.index.bytes': { default: '10485760', kind: 'int', broker: 'log.index.size.max.bytes' },
  'segment.jitter.ms': { default: '0', kind: 'int', broker: 'log.roll.jitter.ms' },
  'segment.ms': { default: '604800000', kind: 'int', broker: 'log.roll.ms' },
  'unclean.leader.election.enable': {
    default: 'false',
    kind: 'bool',
    broker: 'unclean.leader.election.enable',
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
  if (spec.kind === 'int' && !/^-?\d+$/.test(value)) throw bad('not an integer');
  if (spec.kind === 'bool' && value !== 'true' && value !== 'false') throw bad('not true or false');
  if (spec.kind === 'ratio' && !(Number(value) >= 0 && Number(value) <= 1)) throw bad('not between 0 and 1');
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
  return TOPIC_CONFIGS[name]?.kind === 'list';
}

/** The broker config a topic config defaults to, and its value; null for an unknown config. */
export function brokerDefaultOf(name: string): { name: string; value: string } | null {
  const spec = TOPIC_CONFIGS[name];
  return spec ? { name: spec.broker, value: spec.default } : null;
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
