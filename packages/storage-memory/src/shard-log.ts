import {
  ErrorCode,
  RobustMQError,
  type AppendResult,
  type ReadResult,
  type RecordBatch,
  type ShardConfig,
  type ShardInfo,
  type StoredBatch,
} from '@robustmq/core';
import { DataWaiters } from './waiters.js';

/** Dropped batches are cut off the front of the array once they are this many and half of it. */
const COMPACT_AFTER = 1024;

/**
 * One shard held in memory: its batches in offset order, searched by binary search over base
 * offsets. Retention and deleteBefore only drop batches from the front, so the retained batches are
 * `batches[head..]` and the array is compacted now and then rather than shifted on every drop.
 *
 * Arguments are checked by the engine before they reach here.
 */
export class ShardLog {
  readonly name: string;
  config: ShardConfig;
  readonly waiters = new DataWaiters();
  #batches: StoredBatch[] = [];
  #head = 0;
  /** `#runningMax[i]` is the largest maxTimestamp of `batches[head..i]`, valid below `#runningMaxValid`. */
  #runningMax: number[] = [];
  #runningMaxValid = 0;
  #logStartOffset = 0;
  #nextOffset = 0;
  #sizeBytes = 0;

  constructor(name: string, config: ShardConfig) {
    this.name = name;
    this.config = config;
  }

  get nextOffset(): number {
    return this.#nextOffset;
  }

  get info(): ShardInfo {
    return {
      name: this.name,
      config: { ...this.config },
      logStartOffset: this.#logStartOffset,
      nextOffset: this.#nextOffset,
      sizeBytes: this.#sizeBytes,
    };
  }

  /** Appends checked batches, copying their bytes so the caller may reuse its buffers. */
  append(batches: readonly RecordBatch[]): AppendResult {
    const baseOffset = this.#nextOffset;
    for (const batch of batches) {
      const data = new Uint8Array(batch.data);
      this.#batches.push({
        baseOffset: this.#nextOffset,
        recordCount: batch.recordCount,
        maxTimestamp: batch.maxTimestamp,
        data,
      });
      this.#nextOffset += batch.recordCount;
      this.#sizeBytes += data.length;
    }
    this.waiters.notify(this.#nextOffset);
    return { baseOffset, lastOffset: this.#nextOffset - 1, logStartOffset: this.#logStartOffset };
  }

  read(offset: number, maxBytes: number): ReadResult {
    if (offset < this.#logStartOffset || offset > this.#nextOffset) {
      throw new RobustMQError(
        ErrorCode.OffsetOutOfRange,
        `offset ${offset} of ${this.name} is outside [${this.#logStartOffset}, ${this.#nextOffset}]`,
      );
    }
    const batches: StoredBatch[] = [];
    let bytes = 0;
    if (offset < this.#nextOffset) {
      for (let i = this.#indexContaining(offset); i < this.#batches.length; i++) {
        const batch = this.#batches[i]!;
        if (batches.length > 0 && bytes + batch.data.length > maxBytes) break;
        // A fresh object per read so a reader cannot renumber the stored batch; the bytes are shared.
        batches.push({ ...batch });
        bytes += batch.data.length;
      }
    }
    return { batches, logStartOffset: this.#logStartOffset, nextOffset: this.#nextOffset };
  }

  offsetForTimestamp(timestamp: number): number | null {
    const end = this.#batches.length;
    if (this.#head === end) return null;
    this.#refreshRunningMax();
    // The running max is non-decreasing, so the first batch reaching `timestamp` is found by bisection.
    let low = this.#head;
    let high = end;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#runningMax[mid]! >= timestamp) high = mid;
      else low = mid + 1;
    }
    if (low === end) return null;
    return Math.max(this.#batches[low]!.baseOffset, this.#logStartOffset);
  }

  /** Moves the log start up to `offset` (never back); returns the log start. */
  deleteBefore(offset: number): number {
    if (offset > this.#nextOffset) {
      throw new RobustMQError(
        ErrorCode.OffsetOutOfRange,
        `cannot delete ${this.name} before ${offset}: its next offset is ${this.#nextOffset}`,
      );
    }
    if (offset > this.#logStartOffset) {
      this.#logStartOffset = offset;
      this.#dropWhile((batch) => batch.baseOffset + batch.recordCount <= offset);
    }
    return this.#logStartOffset;
  }

  /** Drops whole batches from the front by the shard's time and size limits; returns how many. */
  enforceRetention(now: number): number {
    const { retentionMs, retentionBytes } = this.config;
    let dropped = 0;
    if (retentionMs !== null) {
      const cutoff = now - retentionMs;
      dropped += this.#dropWhile((batch) => batch.maxTimestamp < cutoff);
    }
    // A batch goes only if what stays is still `retentionBytes`, so the newest `retentionBytes` stay.
    if (retentionBytes !== null) {
      dropped += this.#dropWhile((batch) => this.#sizeBytes - batch.data.length >= retentionBytes);
    }
    if (dropped > 0) {
      const first = this.#batches[this.#head];
      this.#logStartOffset = Math.max(this.#logStartOffset, first?.baseOffset ?? this.#nextOffset);
    }
    return dropped;
  }

  /** Index of the retained batch holding `offset`, which must be in [logStart, nextOffset). */
  #indexContaining(offset: number): number {
    let low = this.#head;
    let high = this.#batches.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (this.#batches[mid]!.baseOffset <= offset) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  #dropWhile(drop: (batch: StoredBatch) => boolean): number {
    const start = this.#head;
    while (this.#head < this.#batches.length && drop(this.#batches[this.#head]!)) {
      this.#sizeBytes -= this.#batches[this.#head]!.data.length;
      this.#head++;
    }
    const dropped = this.#head - start;
    if (dropped > 0) {
      this.#runningMaxValid = 0;
      if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#batches.length) {
        this.#batches = this.#batches.slice(this.#head);
        this.#head = 0;
      }
    }
    return dropped;
  }

  /** Extends the running max over batches appended since it was last valid, from the head on. */
  #refreshRunningMax(): void {
    const end = this.#batches.length;
    if (this.#runningMax.length !== end) this.#runningMax.length = end;
    let i = Math.max(this.#runningMaxValid, this.#head);
    let max = i > this.#head ? this.#runningMax[i - 1]! : Number.NEGATIVE_INFINITY;
    for (; i < end; i++) {
      max = Math.max(max, this.#batches[i]!.maxTimestamp);
      this.#runningMax[i] = max;
    }
    this.#runningMaxValid = end;
  }
}
