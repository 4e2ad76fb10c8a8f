import {
  ErrorCode,
  isRobustMQError,
  shardName,
  silentLogger,
  type Logger,
  type StorageEngine,
} from '@robustmq/core';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import { decodeRecordBatch, readBatchHeader, type KafkaRecord } from '../codec/record-batch.js';
import type { ProducedBatch, ProducerCheckResult, ProducerStateCheck } from '../broker/handler.js';

/** Kafka keeps the last five batches per producer and partition (max.in.flight.requests of 5). */
const BATCHES_KEPT = 5;
/** Producers remembered per partition; the least recently active are forgotten first. */
const PRODUCERS_KEPT = 10_000;
/**
 * How far back a partition's log is scanned to rebuild producer state after a restart: records,
 * and bytes (a log of large records is scanned over fewer).
 */
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

/** One partition's producers, as read from its log up to `through`. */
interface PartitionState {
  producers: Map<bigint, ProducerEntry>;
  /** The offset up to which the log has been read into `producers`: the next batch goes here. */
  through: number;
}

/** A partition whose state is held, or being read. */
interface HeldPartition {
  topic: string;
  partition: number;
  state: Promise<PartitionState>;
  /** Something may have been stored at or past `through` that the state does not show yet. */
  behind: boolean;
}

/**
 * Idempotent producers' state per partition: each producer's epoch and its last five batches'
 * sequence ranges and offsets. A retried batch is recognised and answered with its first offset;
 * a gap or a stale epoch is refused. State is rebuilt from the tail of the stored log the first
 * time a partition is used, so retries across a broker restart are still recognised.
 *
 * A batch to append is to be stored only at the offset the state was read up to
 * (`expectedOffset`): if anything else was stored there first (a batch through another broker,
 * or one of this broker's own appends that timed out and landed later), storage refuses it, and
 * the state reads on from the log ({@link behind}) before the batch is checked again.
 */
export class ProducerStateTable implements ProducerStateCheck {
  private readonly partitions = new Map<string, HeldPartition>();

  constructor(
    private readonly storage: StorageEngine,
    private readonly logger: Logger = silentLogger,
  ) {}

  async check(batch: ProducedBatch): Promise<ProducerCheckResult> {
    let state = await this.partition(batch.topic, batch.partition);
    let verdict = this.verdict(state, batch);
    if (verdict.kind === 'error') {
      // A refusal stands only on what the log holds now: batches stored through another broker
      // since this one last read it may be what makes this batch the next in sequence.
      this.behind(batch);
      state = await this.partition(batch.topic, batch.partition);
      verdict = this.verdict(state, batch);
    }
    if (verdict.kind === 'append' || !startsAsLatest(state, batch)) return verdict;
    // The numbers of the producer's last batch again: a retry, or a client that gave up on that
    // batch (KafkaJS after an error it does not retry) sending its next records under them.
    // Answered as the stored batch they would be acknowledged and never stored; refused, the
    // client would be refused on every send from then on.
    if (verdict.kind === 'duplicate' && (await this.storedAs(batch, verdict.baseOffset))) return verdict;
    this.logger.warn(
      {
        topic: batch.topic,
        partition: batch.partition,
        producerId: String(batch.producerId),
        baseSequence: batch.baseSequence,
      },
      'batch reuses the sequence numbers of a different stored batch: stored as a new batch',
    );
    return { kind: 'append', expectedOffset: state.through };
  }

  /**
   * Whether the batch holds the same records (keys, values, headers) as the one stored at
   * `baseOffset`: a retry does, though a client may stamp new timestamps on it (KafkaJS does).
   * One that cannot be read or decoded counts as the same, as Kafka takes any batch under the
   * same sequence numbers for a retry.
   */
  private async storedAs(batch: ProducedBatch, baseOffset: number): Promise<boolean> {
    try {
      const read = await this.storage.read(shardName(batch.topic, batch.partition), baseOffset, {
        maxBytes: 1,
      });
      const stored = read.batches[0];
      if (stored?.baseOffset !== baseOffset) return true;
      return sameRecords(
        decodeRecordBatch(stored.data, { verifyCrc: false }).records,
        decodeRecordBatch(batch.data, { verifyCrc: false }).records,
      );
    } catch {
      return true;
    }
  }

  private verdict(state: PartitionState, batch: ProducedBatch): ProducerCheckResult {
    const append = { kind: 'append', expectedOffset: state.through } as const;
    const entry = state.producers.get(batch.producerId);
    // A producer this partition has not seen (or has forgotten) starts wherever it is.
    if (!entry) return append;
    if (batch.producerEpoch < entry.epoch) return { kind: 'error', errorCode: E.invalidProducerEpoch };
    if (batch.producerEpoch > entry.epoch) {
      return batch.baseSequence === 0 ? append : { kind: 'error', errorCode: E.outOfOrderSequenceNumber };
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
    return append;
  }

  async appended(batch: ProducedBatch, baseOffset: number): Promise<void> {
    const state = await this.partition(batch.topic, batch.partition);
    record(
      state.producers,
      batch.producerId,
      batch.producerEpoch,
      batch.baseSequence,
      batch.lastOffsetDelta,
      {
        baseOffset,
        maxTimestamp: batch.maxTimestamp,
      },
    );
    if (baseOffset === state.through) state.through = baseOffset + batch.lastOffsetDelta + 1;
    else this.behind(batch);
  }

  /**
   * Something was stored where the batch was to go: the state reads on from the log before the
   * next check, so that a batch stored there meanwhile is seen.
   */
  behind(batch: ProducedBatch): void {
    const held = this.partitions.get(shardName(batch.topic, batch.partition));
    if (held) held.behind = true;
  }

  /**
   * Storing the batch failed, so it may or may not be stored, now or later (a journal node that
   * died before it answered): the state reads on from the log before the next check. If it lands
   * only after that, storage refuses it, as it was to go where the next batch goes.
   */
  appendFailed(batch: ProducedBatch): void {
    this.behind(batch);
  }

  clear(): void {
    this.partitions.clear();
  }

  /** Forgets a partition's state: the next batch rebuilds it from the log. */
  forget(topic: string, partition: number): void {
    this.partitions.delete(shardName(topic, partition));
  }

  /** Forgets every partition of a deleted topic. */
  forgetTopic(topic: string): void {
    for (const held of [...this.partitions.values()]) {
      if (held.topic === topic) this.forget(held.topic, held.partition);
    }
  }

  /**
   * Keeps only the partitions `keep` accepts. A partition led elsewhere meanwhile is rebuilt from
   * its log when it comes back, with what the other broker appended.
   */
  retain(keep: (topic: string, partition: number) => boolean): void {
    for (const { topic, partition } of [...this.partitions.values()]) {
      if (!keep(topic, partition)) this.forget(topic, partition);
    }
  }

  private partition(topic: string, partition: number): Promise<PartitionState> {
    const shard = shardName(topic, partition);
    let held = this.partitions.get(shard);
    if (!held) {
      held = { topic, partition, state: this.rebuild(shard), behind: false };
      this.partitions.set(shard, held);
    } else if (held.behind) {
      held.behind = false;
      held.state = held.state.then((state) => this.readOn(shard, state));
    } else {
      return held.state;
    }
    // A failed read is retried on the next batch rather than remembered.
    const { state } = held;
    const reading = held;
    state.catch(() => {
      if (this.partitions.get(shard) === reading && reading.state === state) this.partitions.delete(shard);
    });
    return state;
  }

  /** The state of a partition read from the tail of its log. */
  private async rebuild(shard: string): Promise<PartitionState> {
    let info;
    try {
      info = await this.storage.shardInfo(shard);
    } catch {
      return { producers: new Map(), through: 0 }; // no shard yet: nothing to remember
    }
    const state: PartitionState = {
      producers: new Map(),
      through: Math.max(info.logStartOffset, info.nextOffset - SCAN_RECORDS),
    };
    await this.scan(shard, state, SCAN_BYTES);
    if (state.producers.size > 0)
      this.logger.debug({ shard, producers: state.producers.size }, 'producer state rebuilt from the log');
    return state;
  }

  /**
   * Reads what was stored since the state was last read; a log whose start has passed it (after
   * retention or DeleteRecords) is read again from its tail.
   */
  private async readOn(shard: string, state: PartitionState): Promise<PartitionState> {
    try {
      await this.scan(shard, state, Infinity);
      return state;
    } catch (error) {
      if (!isRobustMQError(error, ErrorCode.OffsetOutOfRange)) throw error;
      return this.rebuild(shard);
    }
  }

  /**
   * Reads the log from `state.through` to its end into `state`. Once `maxBytes` are read, the
   * size of what is left is estimated from the records seen so far and reading skips ahead to
   * where about `maxBytes` are left, so that a log of large records is not read far back.
   */
  private async scan(shard: string, state: PartitionState, maxBytes: number): Promise<void> {
    let bytes = 0;
    let records = 0;
    for (;;) {
      const read = await this.storage.read(shard, state.through, { maxBytes: 4 * 1024 * 1024 });
      if (read.batches.length === 0) return;
      for (const stored of read.batches) {
        bytes += stored.data.length;
        records += stored.recordCount;
        const fields = producerFields(stored.data);
        if (fields)
          record(state.producers, fields.producerId, fields.epoch, fields.firstSeq, fields.delta, {
            baseOffset: stored.baseOffset,
            maxTimestamp: fields.maxTimestamp,
          });
        state.through = Math.max(state.through, stored.baseOffset + stored.recordCount);
      }
      if (bytes > maxBytes) {
        state.through = Math.max(state.through, read.nextOffset - Math.floor(maxBytes / (bytes / records)));
        maxBytes = Infinity;
      }
    }
  }
}

/** Whether the batch starts at the first sequence number of its producer's last batch, same epoch. */
function startsAsLatest(state: PartitionState, batch: ProducedBatch): boolean {
  const entry = state.producers.get(batch.producerId);
  const latest = entry?.batches[entry.batches.length - 1];
  return (
    latest !== undefined && entry!.epoch === batch.producerEpoch && latest.firstSeq === batch.baseSequence
  );
}

function sameRecords(stored: readonly KafkaRecord[], sent: readonly KafkaRecord[]): boolean {
  return (
    stored.length === sent.length &&
    stored.every((record, i) => {
      const other = sent[i]!;
      return (
        sameBytes(record.key, other.key) &&
        sameBytes(record.value, other.value) &&
        record.headers.length === other.headers.length &&
        record.headers.every(
          (header, j) =>
            header.key === other.headers[j]!.key && sameBytes(header.value, other.headers[j]!.value),
        )
      );
    })
  );
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
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
  // A batch stored under the numbers of the last one (see `check`) stands for them from now on.
  entry.batches = entry.batches.filter((b) => b.firstSeq !== baseSequence);
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
