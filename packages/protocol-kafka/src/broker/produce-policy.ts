import type { Topic } from '@robustmq/core';
import { Compression } from '../codec/compression.js';
import { KafkaErrorCode } from '../codec/error-codes.js';
import { configValue } from './topic-configs.js';

/** In-sync replicas of every partition: storage does not replicate shards yet. */
const IN_SYNC_REPLICAS = 1;

/** What a topic's configs ask of the batches produced to it. */
export interface ProducePolicy {
  /** The partitions the topic has; 0 for a topic that does not exist. */
  partitions: number;
  /** `message.timestamp.type=LogAppendTime`: the broker stamps each batch with its append time. */
  logAppendTime: boolean;
  /** How far before the broker's clock a CreateTime timestamp may be (ms). */
  beforeMaxMs: number;
  /** How far after the broker's clock a CreateTime timestamp may be (ms). */
  afterMaxMs: number;
  /** `min.insync.replicas`: acks=all needs at least this many in-sync replicas. */
  minInSyncReplicas: number;
  /**
   * `compression.type`: the codec batches are stored with, recompressed when the producer used
   * another; null (`producer`) stores them as sent.
   */
  compression: Compression | null;
}

/** `compression.type` values and the codec each stores batches with. */
const STORED_COMPRESSION: Readonly<Record<string, Compression | null>> = {
  producer: null,
  uncompressed: Compression.none,
  gzip: Compression.gzip,
  snappy: Compression.snappy,
  lz4: Compression.lz4,
  zstd: Compression.zstd,
};

/** The policy of a topic that does not exist. */
export const NO_TOPIC: ProducePolicy = {
  partitions: 0,
  logAppendTime: false,
  beforeMaxMs: Number.POSITIVE_INFINITY,
  afterMaxMs: Number.POSITIVE_INFINITY,
  minInSyncReplicas: 1,
  compression: null,
};

function milliseconds(topic: Topic, name: string): number {
  const value = Number(configValue(topic, name)?.value);
  return Number.isSafeInteger(value) && value >= 0 ? value : Number.POSITIVE_INFINITY;
}

/** The policy of a topic's configs, as Kafka 3.6+ reads them. */
export function producePolicyOf(topic: Topic): ProducePolicy {
  // The older `message.timestamp.difference.max.ms` bounds both sides where it is the stricter.
  const difference = milliseconds(topic, 'message.timestamp.difference.max.ms');
  return {
    partitions: topic.partitions,
    logAppendTime: configValue(topic, 'message.timestamp.type')?.value === 'LogAppendTime',
    beforeMaxMs: Math.min(difference, milliseconds(topic, 'message.timestamp.before.max.ms')),
    afterMaxMs: Math.min(difference, milliseconds(topic, 'message.timestamp.after.max.ms')),
    minInSyncReplicas: Number(configValue(topic, 'min.insync.replicas')?.value ?? 1),
    compression: STORED_COMPRESSION[configValue(topic, 'compression.type')?.value ?? 'producer'] ?? null,
  };
}

/**
 * The error a batch gets under `policy`, or null: NOT_ENOUGH_REPLICAS for acks=all when the topic
 * wants more in-sync replicas than a partition has, INVALID_TIMESTAMP for a CreateTime timestamp
 * (the batch's first or latest) too far from `now`. Records are not decompressed, so a timestamp
 * between those two is not checked.
 */
export function refusal(
  policy: ProducePolicy,
  acks: number,
  timestamps: { first: number; max: number },
  now: number,
): { errorCode: number; message: string } | null {
  if (acks === -1 && policy.minInSyncReplicas > IN_SYNC_REPLICAS) {
    return {
      errorCode: KafkaErrorCode.notEnoughReplicas,
      message: `min.insync.replicas=${policy.minInSyncReplicas}, but partitions have ${IN_SYNC_REPLICAS} in-sync replica`,
    };
  }
  if (policy.logAppendTime) return null;
  for (const timestamp of [timestamps.first, timestamps.max]) {
    if (timestamp < 0) continue;
    if (now - timestamp > policy.beforeMaxMs || timestamp - now > policy.afterMaxMs) {
      return {
        errorCode: KafkaErrorCode.invalidTimestamp,
        message: `timestamp ${timestamp} is out of range of the broker's time ${now}`,
      };
    }
  }
  return null;
}
