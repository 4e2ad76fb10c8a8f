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
import { partitionErrorOf } from './errors.js';
import type { KafkaBroker, RequestContext } from './handler.js';

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

/**
 * The error a partition of `topic` is answered with before storage is touched: none when the
 * principal may do `action`, TOPIC_AUTHORIZATION_FAILED when not, and the partition error of the
 * failure when the answer cannot be had now (the user store is down).
 */
export async function partitionRefusal(
  context: RequestContext,
  action: Action,
  topic: string,
  access: 'read' | 'write',
): Promise<number> {
  try {
    return (await authorized(context, action, topic))
      ? KafkaErrorCode.none
      : KafkaErrorCode.topicAuthorizationFailed;
  } catch (error) {
    context.logger.warn({ err: error, topic, action }, 'authorization failed');
    return partitionErrorOf(error, access);
  }
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

/**
 * Whether another broker leads this partition of an existing topic, so a request for it is
 * answered NOT_LEADER_OR_FOLLOWER and the client looks the leader up again. A partition the topic
 * does not have is left to the usual UNKNOWN_TOPIC_OR_PARTITION.
 */
export async function ledElsewhere(broker: KafkaBroker, topic: string, partition: number): Promise<boolean> {
  if (broker.cluster.leads(topic, partition)) return false;
  try {
    const partitions = (await broker.catalog.get(topic))?.partitions ?? 0;
    return partition >= 0 && partition < partitions;
  } catch {
    // The catalog cannot answer now: the read or write that follows reports that failure itself.
    return false;
  }
}
