import type { ReadResult, StorageEngine } from '@robustmq/core';
import type { ReadBuffers } from './read-buffers.js';

const MiB = 1024 * 1024;

/** What reads ahead need of storage. */
export type ReadAheadStorage = Pick<StorageEngine, 'read' | 'shardInfo' | 'waitForData'>;

/** Limits on reads ahead. */
export interface ReadAheadLimits {
  /** How long a read ahead waits for the Fetch that wants it before its buffer goes back. */
  readonly lifetimeMs: number;
  /** Bytes of lent buffers the reads ahead of one connection may hold. */
  readonly maxBytes: number;
}

/** A second for the consumer's next Fetch; 32 MiB per connection (two 8 MiB partition reads). */
export const DEFAULT_READ_AHEAD_LIMITS: ReadAheadLimits = Object.freeze({
  lifetimeMs: 1000,
  maxBytes: 32 * MiB,
});

/** Bytes all connections' reads ahead may hold together, shared by one broker. */
export class ReadAheadMemory {
  private used = 0;

  constructor(readonly maxBytes = 256 * MiB) {}

  /** Reserves `bytes`; false when that would pass the limit. */
  reserve(bytes: number): boolean {
    if (this.used + bytes > this.maxBytes) return false;
    this.used += bytes;
    return true;
  }

  /** Gives back bytes reserved before. */
  free(bytes: number): void {
    this.used -= bytes;
  }

  /** Bytes reserved now. */
  get reserved(): number {
    return this.used;
  }
}

/**
 * A span of a shard's life in which it was not deleted: it ends when storage resolves a wait that
 * no record can satisfy, i.e. when the shard is deleted, the engine closes, or the lifetime is up.
 * A read ahead made within a span that has not ended reads the same log the next Fetch would.
 */
interface ShardSpan {
  ended: boolean;
}

interface Ahead {
  readonly offset: number;
  readonly maxBytes: number;
  readonly buffer: Buffer;
  readonly span: ShardSpan;
  /** The read's result, or null if it failed (the Fetch that wants it then reads again). */
  readonly result: Promise<ReadResult | null>;
}

/** A read ahead that a Fetch may serve as if it had just read it itself. */
export interface ReadAheadHit {
  /** The batches read ahead, with the shard's log start and next offset as they are now. */
  readonly result: ReadResult;
  /** The lent buffer the batches are views of; the Fetch now owns it. */
  readonly buffer: Buffer;
}

/** What became of a read ahead. */
export type ReadAheadOutcome = 'used' | 'discarded';

/**
 * One connection's reads ahead of its consumer: once a Fetch has read a partition up to offset N
 * and more is stored, the read of N starts (into a lent buffer) while the response is being
 * written, so that the consumer's next Fetch of N finds its data read or in flight. At most one
 * per partition, within a byte limit per connection and per broker. A read ahead is served only
 * when it is exactly what a read now would return (the log only grows at its end): the same
 * offset and byte limit, the shard not deleted since, the offset still at or past the log start,
 * and no records appended since if the read reached the log end. Anything else (and any error)
 * discards it, and the Fetch reads as it would without.
 */
export class ReadAhead {
  private readonly reads = new Map<string, Ahead>();
  private readonly spans = new Map<string, ShardSpan>();
  private bytes = 0;
  private closed = false;

  constructor(
    private readonly storage: ReadAheadStorage,
    private readonly buffers: ReadBuffers,
    private readonly memory: ReadAheadMemory,
    private readonly limits: ReadAheadLimits = DEFAULT_READ_AHEAD_LIMITS,
    private readonly outcome: (outcome: ReadAheadOutcome) => void = () => undefined,
  ) {}

  /** Starts reading `shard` from `offset`, unless that read is under way already or limits forbid. */
  start(shard: string, offset: number, maxBytes: number): void {
    if (this.closed) return;
    const current = this.reads.get(shard);
    if (current && current.offset === offset && current.maxBytes === maxBytes && !current.span.ended) return;
    if (current) this.discard(shard);
    const buffer = this.buffers.acquire(maxBytes);
    if (buffer === null) return;
    if (this.bytes + buffer.length > this.limits.maxBytes || !this.memory.reserve(buffer.length)) {
      this.buffers.release(buffer);
      return;
    }
    // The span starts before the read, so a deletion during the read ends it.
    const span = this.span(shard);
    const result = this.storage
      .read(shard, offset, { maxBytes, into: buffer })
      .catch((): ReadResult | null => null);
    this.reads.set(shard, { offset, maxBytes, buffer, span, result });
    this.bytes += buffer.length;
  }

  /**
   * The read ahead of `shard`, if it serves a read from `offset` of up to `maxBytes` now; null
   * otherwise, after discarding whatever was read ahead for the shard.
   */
  async take(shard: string, offset: number, maxBytes: number): Promise<ReadAheadHit | null> {
    const ahead = this.reads.get(shard);
    if (!ahead) return null;
    this.forget(shard, ahead);
    if (ahead.offset === offset && ahead.maxBytes === maxBytes && !ahead.span.ended) {
      const result = await this.current(shard, ahead);
      if (result) {
        this.outcome('used');
        return { result, buffer: ahead.buffer };
      }
    }
    this.drop(ahead);
    return null;
  }

  /** Discards every read ahead (the connection closed). */
  close(): void {
    this.closed = true;
    for (const shard of [...this.reads.keys()]) this.discard(shard);
  }

  /** Bytes of lent buffers held by reads ahead not yet taken. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** The read ahead's batches with the shard's state now, or null if they are not what a read would return now. */
  private async current(shard: string, ahead: Ahead): Promise<ReadResult | null> {
    const read = await ahead.result;
    if (read === null || read.batches.length === 0) return null;
    let logStartOffset: number;
    let nextOffset: number;
    try {
      ({ logStartOffset, nextOffset } = await this.storage.shardInfo(shard));
    } catch {
      return null;
    }
    if (ahead.span.ended) return null;
    const last = read.batches[read.batches.length - 1]!;
    const end = last.baseOffset + last.recordCount;
    // Retention or DeleteRecords moved the log start past the offset: a read now fails.
    if (logStartOffset > ahead.offset) return null;
    // The log holds less than was read: not the log that was read.
    if (nextOffset < end) return null;
    // The read stopped at the log end, and records came since: a read now returns them too.
    if (end >= read.nextOffset && nextOffset > end) return null;
    return { batches: read.batches, logStartOffset, nextOffset };
  }

  private span(shard: string): ShardSpan {
    const existing = this.spans.get(shard);
    if (existing && !existing.ended) return existing;
    const span: ShardSpan = { ended: false };
    this.spans.set(shard, span);
    const end = () => {
      span.ended = true;
      if (this.spans.get(shard) === span) this.spans.delete(shard);
      if (this.reads.get(shard)?.span === span) this.discard(shard);
    };
    this.storage.waitForData(shard, Number.MAX_SAFE_INTEGER, this.limits.lifetimeMs).then(end, end);
    return span;
  }

  private discard(shard: string): void {
    const ahead = this.reads.get(shard);
    if (!ahead) return;
    this.forget(shard, ahead);
    this.drop(ahead);
  }

  private forget(shard: string, ahead: Ahead): void {
    this.reads.delete(shard);
    this.bytes -= ahead.buffer.length;
    this.memory.free(ahead.buffer.length);
  }

  /** Gives the buffer back once storage is done with it. */
  private drop(ahead: Ahead): void {
    this.outcome('discarded');
    void ahead.result.then(() => this.buffers.release(ahead.buffer));
  }
}
