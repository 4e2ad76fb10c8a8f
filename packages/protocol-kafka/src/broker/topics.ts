import { createHash } from 'node:crypto';
import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  isRobustMQError,
  validateTopicName,
  type Action,
  type Topic,
} from '@robustmq/core';
import { KafkaErrorCode } from '../codec/error-codes.js';
import type { KafkaBroker, RequestContext } from './handler.js';

/** The Kafka error code for a failure from storage or the catalog. */
export function kafkaErrorOf(error: unknown): number {
  if (!isRobustMQError(error)) return KafkaErrorCode.unknownServerError;
  switch (error.code) {
    case ErrorCode.NotFound:
      return KafkaErrorCode.unknownTopicOrPartition;
    case ErrorCode.AlreadyExists:
      return KafkaErrorCode.topicAlreadyExists;
    case ErrorCode.OffsetOutOfRange:
      return KafkaErrorCode.offsetOutOfRange;
    case ErrorCode.TooLarge:
      return KafkaErrorCode.messageTooLarge;
    case ErrorCode.Corrupt:
      return KafkaErrorCode.corruptMessage;
    case ErrorCode.InvalidArgument:
      return KafkaErrorCode.invalidRequest;
    case ErrorCode.Timeout:
      return KafkaErrorCode.requestTimedOut;
    case ErrorCode.Unavailable:
    case ErrorCode.Closed:
      return KafkaErrorCode.leaderNotAvailable;
    case ErrorCode.Forbidden:
      return KafkaErrorCode.topicAuthorizationFailed;
    default:
      return KafkaErrorCode.unknownServerError;
  }
}

/** A stable topic id (UUID) derived from the topic's name and creation time. */
export function topicIdOf(topic: Pick<Topic, 'name' | 'createdAt'>): string {
  const hex = createHash('sha256').update(`${topic.name}\0${topic.createdAt}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Whether `name` is a valid topic name. */
export function validTopicName(name: string): boolean {
  try {
    validateTopicName(name);
    return true;
  } catch {
    return false;
  }
}

const AUTH_CACHE_MS = 60_000;
const authCache = new WeakMap<object, Map<string, { allowed: boolean; until: number }>>();

/** Whether the connection's principal may do `action` on `topic`; answers are kept a minute. */
export async function authorized(context: RequestContext, action: Action, topic: string): Promise<boolean> {
  const principal = context.connection.principal;
  if (principal.superuser) return true;
  let cache = authCache.get(context.connection);
  if (!cache) {
    cache = new Map();
    authCache.set(context.connection, cache);
  }
  const key = `${principal.username ?? ''}\0${action}\0${topic}`;
  const now = Date.now();
  const hit = cache.get(key);
  if (hit && hit.until > now) return hit.allowed;
  const allowed = await context.broker.context.auth.authorize(principal, action, topic);
  cache.set(key, { allowed, until: now + AUTH_CACHE_MS });
  return allowed;
}

/** Creates a topic with the broker's defaults (auto-creation); an existing one is fine. */
export async function autoCreateTopic(broker: KafkaBroker, name: string): Promise<Topic | null> {
  try {
    const topic = await broker.catalog.create({
      name,
      partitions: broker.settings.defaultPartitions,
      storageClass: 'file',
      retentionMs: DEFAULT_SHARD_CONFIG.retentionMs,
      retentionBytes: null,
      configs: {},
    });
    broker.logger.info({ topic: name, partitions: topic.partitions }, 'topic auto-created');
    return topic;
  } catch (error) {
    if (isRobustMQError(error, ErrorCode.AlreadyExists)) return broker.catalog.get(name);
    throw error;
  }
}
