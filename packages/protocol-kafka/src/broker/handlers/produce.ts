import { KafkaErrorCode } from '../../codec/error-codes.js';
import { Compression, compressionReady } from '../../codec/compression.js';
import type {
  ProduceRequest,
  ProduceRequestPartitionProduceData,
} from '../../codec/messages/produce-request.js';
import type {
  ProduceResponse,
  ProduceResponsePartitionProduceResponse,
} from '../../codec/messages/produce-response.js';
import { ErrorCode, isRobustMQError, shardName, TopicViews, type AppendResult } from '@robustmq/core';
import { crc32c } from '@robustmq/crc32c';
import {
  countRecords,
  readBatchHeader,
  recompressBatch,
  RecordBatchError,
  type RecordBatchHeader,
  setLogAppendTime,
  splitBatches,
  verifyBatchCrc,
} from '../../codec/record-batch.js';
import { producerStateCheck } from '../../producers/index.js';
import type { ApiHandler, ProducedBatch, RequestContext } from '../handler.js';
import { logStartOf, PartitionWriter } from '../partition-writer.js';
import { NO_TOPIC, producePolicyOf, refusal, type ProducePolicy } from '../produce-policy.js';
import { publishStoredBatch } from '../router-feed.js';
import { partitionFailure } from '../errors.js';
import { ledElsewhere, partitionRefusal } from '../topics.js';

/**
 * How long an idempotent batch refused for a batch stored first where it was to go is checked
 * again before Produce answers NOT_LEADER_OR_FOLLOWER (the client then retries): the batch stored
 * first is readable once durable, within a few syncs.
 */
const CHECK_AGAIN_MS = 5_000;
/** How long to wait for that batch to become readable before checking again anyway. */
const CONFLICT_WAIT_MS = 100;

/** The broker's partition writer, shared by every connection. */
export function partitionWriter(context: RequestContext): PartitionWriter {
  const { broker } = context;
  return broker.service('partition-writer', () => new PartitionWriter(broker.context.storage));
}

/** The broker's view of what each topic's configs ask of produced batches. */
function producePolicies(context: RequestContext): TopicViews<ProducePolicy> {
  const { broker } = context;
  return broker.service(
    'produce-policies',
    () => new TopicViews(broker.context.meta, broker.catalog, producePolicyOf, NO_TOPIC),
  );
}

/**
 * A partition's answer. As in Kafka, one about the partition's log (stored, a retry of a stored
 * batch, refused by the log's checks) carries its log start offset; others carry -1.
 */
function result(
  index: number,
  errorCode: number,
  answer: {
    baseOffset?: number;
    errorMessage?: string | null;
    logAppendTime?: number;
    logStartOffset?: number;
  } = {},
): ProduceResponsePartitionProduceResponse {
  return {
    index,
    errorCode,
    baseOffset: BigInt(answer.baseOffset ?? -1),
    logAppendTimeMs: BigInt(answer.logAppendTime ?? -1),
    logStartOffset: BigInt(answer.logStartOffset ?? -1),
    recordErrors: [],
    errorMessage: answer.errorMessage ?? null,
  };
}

/** Why a batch is refused; `byLog` for a check Kafka's log makes, answered with its log start offset. */
interface Refusal {
  errorCode: number;
  message: string;
  byLog?: true;
}

/**
 * Checks a partition's records as Kafka does for Produce v3+: exactly one whole batch, magic 2,
 * a matching CRC, zstd only from v7. Returns the batch or the error to answer with.
 */
function validate(data: ProduceRequestPartitionProduceData, version: number): { batch: Buffer } | Refusal {
  if (data.records === null || data.records.length === 0) {
    return { errorCode: KafkaErrorCode.invalidRecord, message: 'no records' };
  }
  const { batches, remainder } = splitBatches(data.records);
  if (remainder !== 0)
    return { errorCode: KafkaErrorCode.corruptMessage, message: 'records end in a partial batch' };
  if (batches.length !== 1) {
    return {
      errorCode: KafkaErrorCode.invalidRecord,
      message: 'Produce v3+ carries exactly one batch per partition',
    };
  }
  const batch = batches[0]!;
  let header: RecordBatchHeader;
  try {
    header = readBatchHeader(batch);
  } catch (error) {
    const reason = error instanceof RecordBatchError ? error.reason : 'corrupt';
    if (reason === 'unsupported-compression') {
      return { errorCode: KafkaErrorCode.unsupportedCompressionType, message: (error as Error).message };
    }
    return {
      errorCode:
        reason === 'unsupported-magic' ? KafkaErrorCode.invalidRecord : KafkaErrorCode.corruptMessage,
      message: (error as Error).message,
    };
  }
  if (header.compression === Compression.zstd && version < 7) {
    return {
      errorCode: KafkaErrorCode.unsupportedCompressionType,
      message: 'zstd needs Produce v7 or later',
    };
  }
  if (!verifyBatchCrc(batch, crc32c))
    return { errorCode: KafkaErrorCode.corruptMessage, message: 'record batch CRC mismatch' };
  // As Kafka: the header's record count must agree with its offsets, and with the records when they
  // can be counted without decompressing. Offsets are assigned and records published by this count.
  if (header.recordCount < 1 || header.lastOffsetDelta + 1 !== header.recordCount) {
    return {
      errorCode: KafkaErrorCode.invalidRecord,
      message: `record count ${header.recordCount} does not match the last offset delta ${header.lastOffsetDelta}`,
      byLog: true,
    };
  }
  if (header.control) {
    return {
      errorCode: KafkaErrorCode.invalidRecord,
      message: 'clients may not write control batches',
      byLog: true,
    };
  }
  if (header.compression === Compression.none && countRecords(batch) !== header.recordCount) {
    return {
      errorCode: KafkaErrorCode.invalidRecord,
      message: `the batch's records do not add up to its record count ${header.recordCount}`,
      byLog: true,
    };
  }
  return { batch };
}

/** Hands a stored batch's records to the node's router, for MQTT subscribers (docs/cross-protocol.md). */
function publish(context: RequestContext, topic: string, batch: Buffer): void {
  const node = context.broker.context;
  publishStoredBatch(node.router, topic, batch, node.logger);
}

async function producePartition(
  context: RequestContext,
  topic: string,
  data: ProduceRequestPartitionProduceData,
  policy: ProducePolicy,
  acks: number,
): Promise<ProduceResponsePartitionProduceResponse> {
  const { storage } = context.broker.context;
  const shard = shardName(topic, data.index);
  const checked = validate(data, context.apiVersion);
  if ('errorCode' in checked) {
    context.broker.metrics.bad(context.connection.listener, 'bad_batch');
    context.logger.warn({ topic, partition: data.index, reason: checked.message }, 'produced batch refused');
    return result(data.index, checked.errorCode, {
      errorMessage: checked.message,
      ...(checked.byLog && { logStartOffset: await logStartOf(storage, shard) }),
    });
  }
  const header = readBatchHeader(checked.batch);
  const now = Date.now();
  const refused = refusal(policy, acks, { first: header.baseTimestamp, max: header.maxTimestamp }, now);
  if (refused !== null) {
    context.logger.debug({ topic, partition: data.index, reason: refused.message }, 'produced batch refused');
    return result(data.index, refused.errorCode, {
      errorMessage: refused.message,
      logStartOffset: await logStartOf(storage, shard),
    });
  }
  let batch = checked.batch;
  if (policy.compression !== null && policy.compression !== header.compression) {
    try {
      batch = recompressBatch(batch, policy.compression);
    } catch (error) {
      const message = (error as Error).message;
      context.broker.metrics.bad(context.connection.listener, 'bad_batch');
      context.logger.warn({ topic, partition: data.index, reason: message }, 'produced batch refused');
      const miscounted = error instanceof RecordBatchError && error.reason === 'miscounted';
      return result(data.index, miscounted ? KafkaErrorCode.invalidRecord : KafkaErrorCode.corruptMessage, {
        errorMessage: message,
        logStartOffset: await logStartOf(storage, shard),
      });
    }
  }
  // The batch is stamped before anything else sees it: storage, the router and idempotence checks.
  if (policy.logAppendTime) setLogAppendTime(batch, now);
  const logAppendTime = policy.logAppendTime ? now : -1;
  const maxTimestamp = policy.logAppendTime || header.maxTimestamp < 0 ? now : header.maxTimestamp;
  const writer = partitionWriter(context);
  try {
    if (header.producerId < 0n) {
      // Not idempotent: queue the append in order, release the partition, then wait for it.
      const { stored } = await writer.withShard(topic, data.index, (append) => append(batch, maxTimestamp));
      const { baseOffset, logStartOffset } = await stored;
      publish(context, topic, batch);
      context.broker.metrics.recordsReceived(context.connection.listener, header.lastOffsetDelta + 1);
      return result(data.index, KafkaErrorCode.none, { baseOffset, logAppendTime, logStartOffset });
    }
    const produced: ProducedBatch = {
      topic,
      partition: data.index,
      producerId: header.producerId,
      producerEpoch: header.producerEpoch,
      baseSequence: header.baseSequence,
      lastOffsetDelta: header.lastOffsetDelta,
      transactional: header.transactional,
      maxTimestamp: policy.logAppendTime ? now : header.maxTimestamp,
      data: batch,
    };
    const producers = producerStateCheck(context.broker);
    return await writer.withShard(topic, data.index, async (append) => {
      // The state is read up to where this broker's earlier batches end: wait for them.
      await writer.settled(topic, data.index);
      const started = Date.now();
      for (;;) {
        const verdict = await producers.check(produced);
        if (verdict.kind === 'duplicate') {
          return result(data.index, KafkaErrorCode.none, {
            baseOffset: verdict.baseOffset,
            logAppendTime: verdict.maxTimestamp,
            logStartOffset: await logStartOf(storage, shard),
          });
        }
        if (verdict.kind === 'error') {
          return result(data.index, verdict.errorCode, { logStartOffset: await logStartOf(storage, shard) });
        }
        let stored: AppendResult;
        try {
          stored = await (await append(batch, maxTimestamp, verdict.expectedOffset)).stored;
        } catch (error) {
          if (isRobustMQError(error, ErrorCode.Conflict) && Date.now() - started < CHECK_AGAIN_MS) {
            // Stored there first: another broker's batch, or one of ours that timed out earlier and
            // may be this very batch. Check again once it can be read.
            producers.behind(produced);
            await storage.waitForData(shard, verdict.expectedOffset, CONFLICT_WAIT_MS).catch(() => {});
            continue;
          }
          producers.appendFailed(produced);
          throw error;
        }
        const { baseOffset, logStartOffset } = stored;
        await producers.appended(produced, baseOffset);
        publish(context, topic, batch);
        context.broker.metrics.recordsReceived(context.connection.listener, header.lastOffsetDelta + 1);
        return result(data.index, KafkaErrorCode.none, { baseOffset, logAppendTime, logStartOffset });
      }
    });
  } catch (error) {
    const errorCode = partitionFailure(context, error, 'write', { topic, partition: data.index });
    return result(data.index, errorCode, { errorMessage: (error as Error).message });
  }
}

/**
 * Produce: each partition's batch is validated, given its base offset in place and stored as
 * received. acks 1 and all both answer once storage has made the batch durable by the shard's
 * policy; acks 0 is answered with nothing (the dispatch table drops the response). Once every
 * partition's append is queued the connection may start its next Produce (`context.queued`), so
 * pipelined requests share the storage's syncs.
 */
export const handleProduce: ApiHandler<ProduceRequest, ProduceResponse> = async (request, context) => {
  const acksValid = request.acks === 0 || request.acks === 1 || request.acks === -1;
  const policies = producePolicies(context);
  // Per topic: the error to answer its partitions with before storage, or the policy to apply.
  const checked = await Promise.all(
    request.topicData.map(async (topicData): Promise<number | ProducePolicy> => {
      const refused = await partitionRefusal(context, 'publish', topicData.name, 'write');
      if (refused !== KafkaErrorCode.none) return refused;
      try {
        let policy = await policies.of(topicData.name);
        if (
          policy.partitions > 0 &&
          topicData.partitionData.some((data) => data.index >= policy.partitions)
        ) {
          // Partitions added through another broker a moment ago may not have reached the view yet.
          const topic = await context.broker.catalog.get(topicData.name);
          policy = topic === null ? NO_TOPIC : producePolicyOf(topic);
        }
        // Recompressing must not yield once the appends start taking their places.
        if (policy.compression !== null) await compressionReady(policy.compression);
        return policy;
      } catch (error) {
        return partitionFailure(context, error, 'write', { topic: topicData.name });
      }
    }),
  );
  // Partitions another broker leads, by topic; looked up before the appends are queued.
  const elsewhere = await Promise.all(
    request.topicData.map(async (topicData) => {
      const led = new Set<number>();
      for (const data of topicData.partitionData) {
        if (await ledElsewhere(context.broker, topicData.name, data.index)) led.add(data.index);
      }
      return led;
    }),
  );
  // From here to `queued` nothing awaits: each partition takes its place in its shard's queue.
  const pending = request.topicData.map((topicData, i) => ({
    name: topicData.name,
    partitionResponses: topicData.partitionData.map((data) => {
      if (!acksValid) return Promise.resolve(result(data.index, KafkaErrorCode.invalidRequiredAcks));
      const policy = checked[i]!;
      if (typeof policy === 'number') return Promise.resolve(result(data.index, policy));
      // As Kafka: a partition the topic lacks is named so before its records are looked at.
      if (!Number.isInteger(data.index) || data.index < 0 || data.index >= policy.partitions) {
        return Promise.resolve(result(data.index, KafkaErrorCode.unknownTopicOrPartition));
      }
      if (elsewhere[i]!.has(data.index)) {
        return Promise.resolve(result(data.index, KafkaErrorCode.notLeaderOrFollower));
      }
      return producePartition(context, topicData.name, data, policy, request.acks);
    }),
  }));
  context.queued?.();
  const responses = await Promise.all(
    pending.map(async (topic) => ({
      name: topic.name,
      partitionResponses: await Promise.all(topic.partitionResponses),
    })),
  );
  return { responses, throttleTimeMs: 0 };
};
