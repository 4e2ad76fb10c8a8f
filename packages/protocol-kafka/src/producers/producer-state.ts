import { shardName, silentLogger, type Logger, type StorageEngine } from '@robustmq/core';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import { readBatchHeader } from '../codec/record-batch.js';
import type { ProducedBatch, ProducerCheckResult, ProducerStateCheck } from '../broker/handler.js';

/** Kafka keeps the last five batches per producer and partition (max.in.flight.requests of 5). */
const BATCHES_KEPT = 5;
/** Producers remembered per partition; the least recently active are forgotten first. */
const PRODUCERS_KEPT = 10_000;
/** How far back a partition's log is scanned to rebuild producer state after a restart. */
const SCAN_RECORDS = 50_000;
const SCAN_BYTES = 64 * 1024 * 1024;
const INT32_MAX = 2 ** 31 - 1;

interface BatchEntry {
  firstSeq: number;
  lastSeq: number;
  baseOffset: number;
  maxTimestamp: number;
}

interface ProducerEntry {
  epoch: number;
  batches: BatchEntry[];
}

/** The sequence of the last record: sequences wrap from 2^31-1 to 0. */
function lastSequence(baseSequence: number, lastOffsetDelta: number): number {
  return baseSequence > INT32_MAX - lastOffsetDelta
    ? lastOffsetDelta - (INT32_MAX - baseSequence) - 1
    : baseSequence + lastOffsetDelta;
}

function inSequence(lastSeq: number, nextSeq: number): boolean {
  return nextSeq === lastSeq + 1 || (lastSeq === INT32_MAX && nextSeq === 0);
}

/** Producer fields of a stored record batch, or null for other data and non-idempotent batches. */
function producerFields(
  data: Uint8Array,
): { producerId: bigint; epoch: number; firstSeq: number; delta: number; maxTimestamp: number } | null {
  let header;
  try {
    header = readBatchHeader(data);
  } catch {
    return null;
  }
  // Control batches (transaction markers) carry no sequence.
  if (header.control || header.producerId < 0n || header.baseSequence < 0) return null;
  return {
    producerId: header.producerId,
    epoch: header.producerEpoch,
    firstSeq: header.baseSequence,
    delta: header.lastOffsetDelta,
    maxTimestamp: header.maxTimestamp,
  };
}

/**
 * Idempotent producers' state per partition: each producer's epoch and its last five batches'
 * sequence ranges and offsets. A retried batch is recognised and answered with its first offset;
 * a gap or a stale epoch is refused. State is rebuilt from the tail of the stored log the first
 * time a partition is used, so retries across a broker restart are still recognised.
 */
export class ProducerStateTable implements ProducerStateCheck {
  private readonly partitions = new Map<string, Promise<Map<bigint, ProducerEntry>>>();
  /** The topic and partition of each shard held in {@link partitions}. */
  private readonly held = new Map<string, { topic: string; partition: number }>();

  constructor(
    private readonly storage: StorageEngine,
    private readonly logger: Logger = silentLogger,
  ) {}

  async check(batch: ProducedBatch): Promise<ProducerCheckResult> {
    const producers = await this.partition(batch.topic, batch.partition);
    const entry = producers.get(batch.producerId);
    // A producer this partition has not seen (or has forgotten) starts wherever it is.
    if (!entry) return { kind: 'append' };
    if (batch.producerEpoch < entry.epoch) return { kind: 'error', errorCode: E.invalidProducerEpoch };
    if (batch.producerEpoch > entry.epoch) {
      return batch.baseSequence === 0
        ? { kind: 'append' }
        : { kind: 'error', errorCode: E.outOfOrderSequenceNumber };
    }
    const lastSeq = lastSequence(batch.baseSequence, batch.lastOffsetDelta);
    const duplicate = entry.batches.find((b) => b.firstSeq === batch.baseSequence && b.lastSeq === lastSeq);
    if (duplicate) {
      return { kind: 'duplicate', baseOffset: duplicate.baseOffset, maxTimestamp: duplicate.maxTimestamp };
    }
    const last = entry.batches[entry.batches.length - 1];
    if (last && !inSequence(last.lastSeq, batch.baseSequence)) {
      this.logger.debug(
        {
          topic: batch.topic,
          partition: batch.partition,
          producerId: String(batch.producerId),
          expected: last.lastSeq + 1,
          got: batch.baseSequence,
        },
        'out of order sequence number',
      );
      return { kind: 'error', errorCode: E.outOfOrderSequenceNumber };
    }
    return { kind: 'append' };
  }

  async appended(batch: ProducedBatch, baseOffset: number): Promise<void> {
    const producers = await this.partition(batch.topic, batch.partition);
    record(producers, batch.producerId, batch.producerEpoch, batch.baseSequence, batch.lastOffsetDelta, {
      baseOffset,
      maxTimestamp: batch.maxTimestamp,
    });
  }

  /**
   * Forgets the partition, so that the next batch rebuilds it from the log: the retry of a batch
   * stored without an answer is then found there and answered as a duplicate.
   */
  appendFailed(batch: ProducedBatch): void {
    this.forget(batch.topic, batch.partition);
  }

  clear(): void {
    this.partitions.clear();
    this.held.clear();
  }

  /** Forgets a partition's state: the next batch rebuilds it from the log. */
  forget(topic: string, partition: number): void {
    this.partitions.delete(shardName(topic, partition));
    this.held.delete(shardName(topic, partition));
  }

  /** Forgets every partition of a deleted topic. */
  forgetTopic(topic: string): void {
    for (const held of [...this.held.values()]) {
      if (held.topic === topic) this.forget(held.topic, held.partition);
    }
  }

  /**
   * Keeps only the partitions `keep` accepts. A partition led elsewhere meanwhile is rebuilt from
   * its log when it comes back, with what the other broker appended.
   */
  retain(keep: (topic: string, partition: number) => boolean): void {
    for (const { topic, partition } of [...this.held.values()]) {
      if (!keep(topic, partition)) this.forget(topic, partition);
    }
  }

  private partition(topic: string, partition: number): Promise<Map<bigint, ProducerEntry>> {
    const shard = shardName(topic, partition);
    let state = this.partitions.get(shard);
    if (!state) {
      state = this.rebuild(shard);
      this.partitions.set(shard, state);
      this.held.set(shard, { topic, partition });
      // A failed scan is retried on the next batch rather than remembered.
      state.catch(() => this.forget(topic, partition));
    }
    return state;
  }

  private async rebuild(shard: string): Promise<Map<bigint, ProducerEntry>> {
    const producers = new Map<bigint, ProducerEntry>();
    let info;
    try {
      info = await this.storage.shardInfo(shard);
    } catch {
      return producers; // no shard yet: nothing to remember
    }
    let offset = Math.max(info.logStartOffset, info.nextOffset - SCAN_RECORDS);
    let bytes = 0;
    while (offset < info.nextOffset && bytes < SCAN_BYTES) {
      const read = await this.storage.read(shard, offset, { maxBytes: 4 * 1024 * 1024 });
      if (read.batches.length === 0) break;
      for (const stored of read.batches) {
        bytes += stored.data.length;
        const fields = producerFields(stored.data);
        if (fields)
          record(producers, fields.producerId, fields.epoch, fields.firstSeq, fields.delta, {
            baseOffset: stored.baseOffset,
            maxTimestamp: fields.maxTimestamp,
          });
      }
      const last = read.batches[read.batches.length - 1]!;
      offset = last.baseOffset + last.recordCount;
    }
    if (producers.size > 0)
      this.logger.debug({ shard, producers: producers.size }, 'producer state rebuilt from the log');
    return producers;
  }
}

function record(
  producers: Map<bigint, ProducerEntry>,
  producerId: bigint,
  epoch: number,
  baseSequence: number,
  lastOffsetDelta: number,
  stored: { baseOffset: number; maxTimestamp: number },
): void {
  let entry = producers.get(producerId);
  if (!entry || epoch > entry.epoch) entry = { epoch, batches: [] };
  else if (epoch < entry.epoch) return;
  entry.batches.push({
    firstSeq: baseSequence,
    lastSeq: lastSequence(baseSequence, lastOffsetDelta),
    ...stored,
  });
  if (entry.batches.length > BATCHES_KEPT) entry.batches.shift();
  // Re-inserting keeps the map in least-recently-active order for eviction.
  producers.delete(producerId);
  producers.set(producerId, entry);
  if (producers.size > PRODUCERS_KEPT) producers.delete(producers.keys().next().value!);
}
