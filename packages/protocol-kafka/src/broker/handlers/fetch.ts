import { setTimeout as delay } from 'node:timers/promises';
import {
  ErrorCode,
  isRobustMQError,
  shardName,
  type ReadOptions,
  type ReadResult,
  type StoredBatch,
} from '@robustmq/core';
import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { FetchRequest, FetchRequestFetchPartition } from '../../codec/messages/fetch-request.js';
import type { FetchResponse, FetchResponsePartitionData } from '../../codec/messages/fetch-response.js';
import type { Records } from '../../codec/protocol.js';
import { setBaseOffset } from '../../codec/record-batch.js';
import type { ApiHandler, ConnectionState, RequestContext } from '../handler.js';
import { ReadAhead, ReadAheadMemory } from '../read-ahead.js';
import { ReadBuffers } from '../read-buffers.js';
import { partitionFailure } from '../errors.js';
import { ledElsewhere, partitionRefusal } from '../topics.js';

/** Bytes of buffers one Fetch may borrow for its reads; partitions beyond it read into fresh memory. */
const MAX_LENT_PER_FETCH = 32 * 1024 * 1024;

interface PartitionRead {
  topic: string;
  request: FetchRequestFetchPartition;
  /** The error the partition is answered with before any read (no right to read it), or none. */
  refused: number;
  data: FetchResponsePartitionData<Records>;
  bytes: number;
  /** Records in the batches read (whole batches, as sent). */
  records: number;
  /** The buffer lent to this partition's storage reads, if any; the response may refer to it. */
  lent: Buffer | null;
  /** The byte limit of the latest read. */
  maxBytes: number;
  /** The offset after the last batch read (the fetch offset when none was). */
  end: number;
}

/**
 * A partition answered without batches still carries an empty record set, never a null one: librdkafka
 * refuses a whole Fetch response in which any partition's records have size -1.
 */
const NO_RECORDS = Buffer.alloc(0);

function empty(partitionIndex: number, errorCode: number): FetchResponsePartitionData<Records> {
  return {
    partitionIndex,
    errorCode,
    highWatermark: -1n,
    lastStableOffset: -1n,
    logStartOffset: -1n,
    abortedTransactions: [],
    preferredReadReplica: -1,
    records: NO_RECORDS,
  };
}

/**
 * The bytes of stored batches as a client reads them, one piece per batch: the response writes
 * them one after another, so they are neither joined nor copied (the storage keeps a frame header
 * between batches). A batch whose header does not carry the offset storage gave it (another writer
 * appended between offset assignment and append) is copied and corrected; all others are served
 * as stored.
 */
function recordsOf(batches: readonly StoredBatch[]): Buffer[] {
  return batches.map((batch) => {
    const data = Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength);
    if (data.length >= 8 && data.readBigInt64BE(0) !== BigInt(batch.baseOffset)) {
      const copy = Buffer.from(data);
      setBaseOffset(copy, batch.baseOffset);
      return copy;
    }
    return data;
  });
}

/** How a Fetch's partition reads get their buffers. */
interface Lending {
  /** A buffer for a read of up to `bytes`, or null to read into fresh memory. */
  lend(bytes: number): Buffer | null;
  /** Takes on a buffer a read ahead filled, given back with the Fetch's own. */
  adopt(buffer: Buffer): void;
}

/**
 * The batches of a read that a Fetch may carry within `maxBytes`. Storage returns the first batch
 * even when it is larger; as in Kafka, only the first partition with data (`minOneBatch`) keeps
 * it, the others get nothing rather than break the limit: librdkafka drops a connection whose
 * response exceeds what its fetch.max.bytes allows.
 */
function withinLimit(result: ReadResult, maxBytes: number, minOneBatch: boolean): ReadResult {
  const first = result.batches[0];
  if (minOneBatch || first === undefined || first.data.byteLength <= maxBytes) return result;
  return { ...result, batches: [] };
}

async function readPartition(
  context: RequestContext,
  read: PartitionRead,
  budget: number,
  minOneBatch: boolean,
  lending: Lending,
  ahead: ReadAhead | null,
): Promise<void> {
  const { storage } = context.broker.context;
  const shard = shardName(read.topic, read.request.partition);
  const index = read.request.partition;
  if (read.refused !== KafkaErrorCode.none) {
    read.data = empty(index, read.refused);
    return;
  }
  const offset = Number(read.request.fetchOffset);
  read.end = offset;
  // As in Kafka (KIP-74), the first partition with data gets a whole batch even when a limit is 0.
  const maxBytes = Math.min(budget, read.request.partitionMaxBytes);
  try {
    if (offset < 0 || maxBytes < 0 || (maxBytes === 0 && !minOneBatch)) {
      // No batch for this partition: only its offsets. Kafka's log refuses a read size below 0, so
      // then a partition with records to read fails with UNKNOWN_SERVER_ERROR. A negative offset
      // is below the log start: out of range, as Kafka answers it.
      const info = await storage.shardInfo(shard);
      const outOfRange = offset < info.logStartOffset || offset > info.nextOffset;
      if (maxBytes < 0 && !outOfRange && offset !== info.nextOffset) {
        read.data = empty(index, KafkaErrorCode.unknownServerError);
      } else {
        read.data = {
          ...empty(index, outOfRange ? KafkaErrorCode.offsetOutOfRange : KafkaErrorCode.none),
          highWatermark: BigInt(info.nextOffset),
          lastStableOffset: BigInt(info.nextOffset),
          logStartOffset: BigInt(info.logStartOffset),
        };
      }
      read.bytes = 0;
      read.records = 0;
      return;
    }
    read.maxBytes = maxBytes;
    const hit = ahead === null ? null : await ahead.take(shard, offset, maxBytes);
    let result: ReadResult;
    if (hit !== null) {
      lending.adopt(hit.buffer);
      read.lent ??= hit.buffer;
      result = hit.result;
    } else {
      // Storage may read into the lent buffer (an engine that cannot, ignores it); a read again
      // after waiting reuses it, as the earlier read's batches are dropped.
      read.lent ??= lending.lend(maxBytes);
      const options: ReadOptions = read.lent === null ? { maxBytes } : { maxBytes, into: read.lent };
      result = await storage.read(shard, offset, options);
    }
    result = withinLimit(result, maxBytes, minOneBatch);
    const last = result.batches[result.batches.length - 1];
    if (last) read.end = last.baseOffset + last.recordCount;
    const records = recordsOf(result.batches);
    read.data = {
      ...empty(index, KafkaErrorCode.none),
      highWatermark: BigInt(result.nextOffset),
      lastStableOffset: BigInt(result.nextOffset),
      logStartOffset: BigInt(result.logStartOffset),
      records,
    };
    read.bytes = records.reduce((total, piece) => total + piece.length, 0);
    read.records = result.batches.reduce((count, batch) => count + batch.recordCount, 0);
  } catch (error) {
    read.bytes = 0;
    read.records = 0;
    read.data = empty(index, partitionFailure(context, error, 'read', { shard, offset }));
    if (isRobustMQError(error, ErrorCode.OffsetOutOfRange)) {
      try {
        const info = await storage.shardInfo(shard);
        read.data.highWatermark = BigInt(info.nextOffset);
        read.data.lastStableOffset = BigInt(info.nextOffset);
        read.data.logStartOffset = BigInt(info.logStartOffset);
      } catch {
        // The shard went away meanwhile: the error code already says enough.
      }
    }
  }
}

/**
 * Fetch: serves stored batches as they are (no decoding, no decompression). Reads every partition,
 * and if fewer than `min_bytes` came back, waits for new data up to `max_wait_ms` and reads again.
 * `max_bytes` bounds the response except that the first partition with data returns at least one
 * whole batch, so a consumer always progresses.
 */
export const handleFetch: ApiHandler<FetchRequest, FetchResponse<Records>> = async (request, context) => {
  const { broker } = context;
  // Buffers lent to storage go back once the response that refers to them is in the socket's hands.
  const buffers = context.afterResponse ? readBuffers(context) : null;
  const lent: Buffer[] = [];
  let lentBytes = 0;
  if (buffers) context.afterResponse!(() => lent.forEach((buffer) => buffers.release(buffer)));
  const adopt = (buffer: Buffer): void => {
    lent.push(buffer);
    lentBytes += buffer.length;
  };
  const lending: Lending = {
    // A buffer for a partition's reads, while the request's lent buffers stay within bounds.
    lend: (bytes) => {
      if (!buffers || lentBytes >= MAX_LENT_PER_FETCH) return null;
      const buffer = buffers.acquire(bytes);
      if (buffer) adopt(buffer);
      return buffer;
    },
    adopt,
  };
  const ahead = buffers ? readAheadOf(context, buffers) : null;
  const reads: PartitionRead[] = [];
  for (const topic of request.topics) {
    const name = topic.topic ?? '';
    const refused = await partitionRefusal(context, 'subscribe', name, 'read');
    for (const partition of topic.partitions) {
      const elsewhere =
        refused === KafkaErrorCode.none && (await ledElsewhere(broker, name, partition.partition));
      reads.push({
        topic: name,
        request: partition,
        refused: elsewhere ? KafkaErrorCode.notLeaderOrFollower : refused,
        data: empty(partition.partition, 0),
        bytes: 0,
        records: 0,
        lent: null,
        maxBytes: 0,
        end: Number(partition.fetchOffset),
      });
    }
  }
  const maxBytes = request.maxBytes ?? 0x7fffffff;
  // As Kafka: no more than max_bytes is waited for, so a negative one is answered at once.
  const minBytes = Math.min(request.minBytes, maxBytes);
  const deadline = Date.now() + Math.max(0, request.maxWaitMs);
  for (;;) {
    let budget = maxBytes;
    let total = 0;
    let failed = false;
    for (const read of reads) {
      await readPartition(context, read, budget, total === 0, lending, ahead);
      // Kafka's remaining budget never goes below 0: a negative max_bytes costs the first partition only.
      budget = Math.max(0, budget - read.bytes);
      total += read.bytes;
      const { errorCode } = read.data;
      if (errorCode !== KafkaErrorCode.none && !STORAGE_DOWN.has(errorCode)) failed = true;
    }
    const remaining = deadline - Date.now();
    // min_bytes 0 asks for an answer at once, data or not (Kafka's rule too).
    if (total >= minBytes || failed || remaining <= 0 || broker.stopped.aborted) break;
    // Partitions whose storage is down are not waited on (their wait would fail at once): they are
    // answered at the deadline, so a client that retries at once does not spin against the outage.
    // An empty Fetch waits out the deadline too.
    await waitForAny(
      reads
        .filter((read) => read.data.errorCode === KafkaErrorCode.none)
        .map((read) =>
          broker.context.storage.waitForData(
            shardName(read.topic, read.request.partition),
            waitOffset(read),
            remaining,
          ),
        ),
      remaining,
      broker.stopped,
    );
  }
  // The consumer's next Fetch most likely asks for what follows: read it while this response is
  // being written.
  if (ahead) {
    for (const read of reads) {
      if (
        read.data.errorCode === KafkaErrorCode.none &&
        read.records > 0 &&
        read.end < Number(read.data.highWatermark)
      ) {
        ahead.start(shardName(read.topic, read.request.partition), read.end, read.maxBytes);
      }
    }
  }
  broker.metrics.recordsSent(
    context.connection.listener,
    reads.reduce((count, read) => count + read.records, 0),
  );
  return {
    throttleTimeMs: 0,
    errorCode: KafkaErrorCode.none,
    sessionId: 0,
    responses: groupByTopic(reads),
  };
};

/** Partition codes that mean storage cannot serve now, rather than anything about the request. */
const STORAGE_DOWN: ReadonlySet<number> = new Set([
  KafkaErrorCode.notLeaderOrFollower,
  KafkaErrorCode.kafkaStorageError,
]);

/** Resolves once one of `waits` settles, `ms` have passed or the broker stops. */
async function waitForAny(waits: Promise<unknown>[], ms: number, stopped: AbortSignal): Promise<void> {
  const timer = new AbortController();
  const stop = () => timer.abort();
  stopped.addEventListener('abort', stop, { once: true });
  try {
    await Promise.race([
      ...waits.map((wait) => wait.catch(() => undefined)),
      delay(ms, undefined, { signal: timer.signal }).catch(() => undefined),
    ]);
  } finally {
    timer.abort();
    stopped.removeEventListener('abort', stop);
  }
}

/** The broker's buffers for storage reads, shared by every connection. */
function readBuffers(context: RequestContext): ReadBuffers {
  return context.broker.service('read-buffers', () => new ReadBuffers());
}

const readsAhead = new WeakMap<ConnectionState, ReadAhead>();

/** The connection's reads ahead, or null for a request outside a connection that can close. */
function readAheadOf(context: RequestContext, buffers: ReadBuffers): ReadAhead | null {
  const { closed, connection, broker } = context;
  if (!closed || closed.aborted) return null;
  let ahead = readsAhead.get(connection);
  if (!ahead) {
    const memory = broker.service('read-ahead-memory', () => new ReadAheadMemory());
    const created = new ReadAhead(broker.context.storage, buffers, memory, undefined, (outcome) =>
      broker.metrics.readAhead(connection.listener, outcome),
    );
    closed.addEventListener('abort', () => created.close(), { once: true });
    readsAhead.set(connection, created);
    ahead = created;
  }
  return ahead;
}

/** Where new data for a partition would start: past what it holds now. */
function waitOffset(read: PartitionRead): number {
  const end = Number(read.data.highWatermark);
  return Math.max(end, Number(read.request.fetchOffset));
}

function groupByTopic(reads: readonly PartitionRead[]): FetchResponse<Records>['responses'] {
  const out: FetchResponse<Records>['responses'] = [];
  for (const read of reads) {
    const last = out[out.length - 1];
    if (last && last.topic === read.topic) last.partitions.push(read.data);
    else out.push({ topic: read.topic, partitions: [read.data] });
  }
  return out;
}
