import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { KafkaErrorCode } from '../codec/error-codes.js';
import type { RequestContext } from './handler.js';

/*
 * Which Kafka error code answers a failure of storage, the meta store or a handler, by the kind of
 * request it happened in.
 */

/**
 * Whether a failure is the disk's (or the file system's): a system error such as ENOSPC or EIO, or
 * RocksDB's "IO error", anywhere in its chain of causes. Engines report these as INTERNAL with the
 * system error as the cause; Kafka answers them KAFKA_STORAGE_ERROR (a failed log directory).
 */
export function isStorageIoError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    const { code, syscall } = current as { code?: unknown; syscall?: unknown };
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && typeof syscall === 'string') return true;
    if (/\bIO error\b/.test(current.message)) return true;
    current = current.cause;
  }
  return false;
}

/** A failure that retrying later may get past: storage or a peer that cannot serve now. */
function transient(error: unknown): boolean {
  return (
    isRobustMQError(error, ErrorCode.Unavailable) ||
    isRobustMQError(error, ErrorCode.Closed) ||
    isRobustMQError(error, ErrorCode.Timeout)
  );
}

/** Whether a failure is one of storage's (I/O or not serving now), as opposed to the request's or a bug. */
export function isStorageFailure(error: unknown): boolean {
  return transient(error) || isStorageIoError(error);
}

/**
 * The Kafka error code for a failure from storage or the catalog, in a request about topics as a
 * whole (CreateTopics, configs, DeleteTopics). Storage that cannot serve now is REQUEST_TIMED_OUT,
 * as Kafka answers when its controller does not complete in time; a disk failure is
 * KAFKA_STORAGE_ERROR.
 */
export function kafkaErrorOf(error: unknown): number {
  if (!isRobustMQError(error)) {
    return isStorageIoError(error) ? KafkaErrorCode.kafkaStorageError : KafkaErrorCode.unknownServerError;
  }
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
    case ErrorCode.Unavailable:
    case ErrorCode.Closed:
      return KafkaErrorCode.requestTimedOut;
    case ErrorCode.Forbidden:
      return KafkaErrorCode.topicAuthorizationFailed;
    default:
      return isStorageIoError(error) ? KafkaErrorCode.kafkaStorageError : KafkaErrorCode.unknownServerError;
  }
}

/**
 * {@link kafkaErrorOf}, logging the failures an operator must see: a disk failure and anything
 * unexpected.
 */
export function topicFailure(
  context: RequestContext,
  error: unknown,
  fields: Record<string, unknown>,
): number {
  const errorCode = kafkaErrorOf(error);
  if (errorCode === KafkaErrorCode.unknownServerError || errorCode === KafkaErrorCode.kafkaStorageError) {
    context.logger.error({ err: error, api: context.apiKey, ...fields }, 'topic request failed');
  }
  return errorCode;
}

/**
 * The Kafka error code for a failure reading or writing one partition (Fetch, ListOffsets,
 * OffsetForLeaderEpoch, DeleteRecords, Produce). Storage that cannot serve now answers
 * NOT_LEADER_OR_FOLLOWER: Kafka's answer when a partition is not served by the broker asked, and
 * the one code that kafka-python, librdkafka, KafkaJS and the Java client all retry (after
 * reading metadata again) in every one of these APIs, where kafka-python's consumer dies on
 * LEADER_NOT_AVAILABLE or REQUEST_TIMED_OUT in a Fetch. A write that timed out (its effect unknown)
 * is REQUEST_TIMED_OUT, as Kafka answers one not replicated in time; one refused because
 * another writer appended first, NOT_LEADER_OR_FOLLOWER. A disk failure is
 * KAFKA_STORAGE_ERROR, as for Kafka's failed log directory.
 */
export function partitionErrorOf(error: unknown, access: 'read' | 'write'): number {
  if (access === 'write' && isRobustMQError(error, ErrorCode.Timeout)) return KafkaErrorCode.requestTimedOut;
  // Another writer appended where this one was to: as Kafka answers a leader that lost its place.
  if (access === 'write' && isRobustMQError(error, ErrorCode.Conflict))
    return KafkaErrorCode.notLeaderOrFollower;
  if (transient(error)) return KafkaErrorCode.notLeaderOrFollower;
  return kafkaErrorOf(error);
}

/**
 * {@link partitionErrorOf}, logging the failures an operator must see: a disk failure and anything
 * unexpected (an outage of storage is left to storage's own logs, not repeated per request).
 */
export function partitionFailure(
  context: RequestContext,
  error: unknown,
  access: 'read' | 'write',
  fields: Record<string, unknown>,
): number {
  const errorCode = partitionErrorOf(error, access);
  if (errorCode === KafkaErrorCode.unknownServerError || errorCode === KafkaErrorCode.kafkaStorageError) {
    context.logger.error({ err: error, api: context.apiKey, ...fields }, 'partition request failed');
  }
  return errorCode;
}

/**
 * The Kafka error code for a topic in Metadata whose lookup or auto-creation failed in storage or
 * the meta store: LEADER_NOT_AVAILABLE, Kafka's answer for a topic still being created, on which
 * every client waits and asks again.
 */
export function metadataErrorOf(error: unknown): number {
  return isStorageFailure(error) ? KafkaErrorCode.leaderNotAvailable : kafkaErrorOf(error);
}

/**
 * The Kafka error code for a failure in a request to the group coordinator (offsets, groups,
 * producer ids): COORDINATOR_NOT_AVAILABLE when storage or the meta store cannot serve, on which
 * clients look the coordinator up again and retry.
 */
export function coordinatorErrorOf(error: unknown): number {
  return isStorageFailure(error) ? KafkaErrorCode.coordinatorNotAvailable : kafkaErrorOf(error);
}
