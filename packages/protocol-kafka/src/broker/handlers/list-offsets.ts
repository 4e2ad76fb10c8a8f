import { shardName, type Logger, type StorageEngine } from '@robustmq/core';
import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { ListOffsetsRequest } from '../../codec/messages/list-offsets-request.js';
import type {
  ListOffsetsResponse,
  ListOffsetsResponseListOffsetsPartitionResponse,
} from '../../codec/messages/list-offsets-response.js';
import { decodeRecordBatch, readBatchHeader, type DecodedRecordBatch } from '../../codec/record-batch.js';
import type { ApiHandler } from '../handler.js';
import { LEADER_EPOCH } from '../partition-writer.js';
import { partitionFailure } from '../errors.js';
import { partitionRefusal } from '../topics.js';

const LATEST = -1;
const EARLIEST = -2;
const MAX_TIMESTAMP = -3;
const EARLIEST_LOCAL = -4;
const SCAN_BYTES = 1024 * 1024;

interface Found {
  offset: number;
  timestamp: number;
}

/**
 * The records of a stored batch, or null when they cannot be read: Produce stores compressed batches
 * without unpacking them, so one may hold garbage or decompress to more than is allowed.
 */
function recordsOf(batch: Uint8Array, logger: Logger, shard: string): DecodedRecordBatch | null {
  try {
    return decodeRecordBatch(batch, { verifyCrc: false });
  } catch (error) {
    logger.warn({ shard, err: error }, 'stored batch unreadable: timestamp lookup answers its first offset');
    return null;
  }
}

/** The first record at or after `timestamp`: the batch from storage's time index, then its records. */
async function offsetForTimestamp(
  storage: StorageEngine,
  shard: string,
  timestamp: number,
  logger: Logger,
): Promise<Found | null> {
  let offset = await storage.offsetForTimestamp(shard, timestamp);
  while (offset !== null) {
    const { batches, nextOffset } = await storage.read(shard, offset, { maxBytes: SCAN_BYTES });
    if (batches.length === 0) return null;
    for (const batch of batches) {
      const header = readBatchHeader(batch.data);
      // As Kafka: a batch whose latest timestamp is earlier holds no such record (-1: not given).
      if (header.maxTimestamp >= 0 && header.maxTimestamp < timestamp) continue;
      const decoded = recordsOf(batch.data, logger, shard);
      if (decoded === null) {
        const first = Math.max(offset, batch.baseOffset);
        return { offset: first, timestamp: header.maxTimestamp };
      }
      for (const record of decoded.records) {
        const recordOffset = batch.baseOffset + (record.offset - decoded.baseOffset);
        if (recordOffset >= offset && record.timestamp >= timestamp) {
          return { offset: recordOffset, timestamp: record.timestamp };
        }
      }
    }
    const last = batches[batches.length - 1]!;
    offset = last.baseOffset + last.recordCount;
    if (offset >= nextOffset) return null;
  }
  return null;
}

/** The record with the largest timestamp (the earliest such): a scan of batch headers, then one batch. */
async function maxTimestampOffset(
  storage: StorageEngine,
  shard: string,
  logger: Logger,
): Promise<Found | null> {
  const info = await storage.shardInfo(shard);
  let best: { batch: Buffer; baseOffset: number; maxTimestamp: number } | null = null;
  let offset = info.logStartOffset;
  while (offset < info.nextOffset) {
    const { batches } = await storage.read(shard, offset, { maxBytes: SCAN_BYTES });
    if (batches.length === 0) break;
    for (const batch of batches) {
      const header = readBatchHeader(batch.data);
      if (!best || header.maxTimestamp > best.maxTimestamp) {
        best = {
          batch: Buffer.from(batch.data),
          baseOffset: batch.baseOffset,
          maxTimestamp: header.maxTimestamp,
        };
      }
      offset = batch.baseOffset + batch.recordCount;
    }
  }
  if (!best) return null;
  const decoded = recordsOf(best.batch, logger, shard);
  if (decoded === null) return { offset: best.baseOffset, timestamp: best.maxTimestamp };
  const record = decoded.records.find((r) => r.timestamp === best.maxTimestamp) ?? decoded.records.at(-1);
  if (!record) return null;
  return { offset: best.baseOffset + (record.offset - decoded.baseOffset), timestamp: record.timestamp };
}

/** The topic-partitions a request names more than once, as `topic\0partition`. */
function duplicates(request: ListOffsetsRequest): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const topic of request.topics) {
    for (const p of topic.partitions) {
      const key = `${topic.name}\0${p.partitionIndex}`;
      if (seen.has(key)) twice.add(key);
      seen.add(key);
    }
  }
  return twice;
}

/**
 * ListOffsets: latest (-1) is the high watermark, earliest (-2, -4) the log start, -3 the record
 * with the largest timestamp, and a timestamp the first record at or after it. A partition named
 * more than once is answered INVALID_REQUEST each time, as Kafka does.
 */
export const handleListOffsets: ApiHandler<ListOffsetsRequest, ListOffsetsResponse> = async (
  request,
  context,
) => {
  const { storage } = context.broker.context;
  const twice = duplicates(request);
  const topics = await Promise.all(
    request.topics.map(async (topic) => {
      const refused = await partitionRefusal(context, 'describe', topic.name, 'read');
      const partitions = await Promise.all(
        topic.partitions.map(async (p): Promise<ListOffsetsResponseListOffsetsPartitionResponse> => {
          const answer = (errorCode: number, found: Found | null) => ({
            partitionIndex: p.partitionIndex,
            errorCode,
            oldStyleOffsets: [],
            timestamp: BigInt(found?.timestamp ?? -1),
            offset: BigInt(found?.offset ?? -1),
            leaderEpoch: found ? LEADER_EPOCH : -1,
          });
          if (twice.has(`${topic.name}\0${p.partitionIndex}`))
            return answer(KafkaErrorCode.invalidRequest, null);
          if (refused !== KafkaErrorCode.none) return answer(refused, null);
          const shard = shardName(topic.name, p.partitionIndex);
          const wanted = Number(p.timestamp);
          try {
            if (wanted === LATEST) {
              return answer(0, { offset: (await storage.shardInfo(shard)).nextOffset, timestamp: -1 });
            }
            if (wanted === EARLIEST || wanted === EARLIEST_LOCAL) {
              return answer(0, { offset: (await storage.shardInfo(shard)).logStartOffset, timestamp: -1 });
            }
            if (wanted === MAX_TIMESTAMP)
              return answer(0, await maxTimestampOffset(storage, shard, context.logger));
            if (wanted < 0) {
              await storage.shardInfo(shard);
              return answer(0, null);
            }
            return answer(0, await offsetForTimestamp(storage, shard, wanted, context.logger));
          } catch (error) {
            return answer(partitionFailure(context, error, 'read', { shard }), null);
          }
        }),
      );
      return { name: topic.name, partitions };
    }),
  );
  return { throttleTimeMs: 0, topics };
};
