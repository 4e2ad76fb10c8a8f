import { shardName, type AppendResult, type RecordBatch, type StorageEngine } from '@robustmq/core';
import { readBatchHeader, setBaseOffset, setPartitionLeaderEpoch } from '../codec/record-batch.js';

/**
 * A batch handed to storage: `stored` settles once it is durable (or failed), with the log start
 * offset Produce v5+ answers with. Wrapped so that awaiting the hand-off does not wait for storage.
 */
export interface Appending {
  stored: Promise<AppendResult>;
}

/**
 * A shard's log start offset, or -1 when storage cannot tell (the shard is gone, storage is down):
 * for answers about the log that stored nothing, as an append's result carries it.
 */
export async function logStartOf(storage: StorageEngine, shard: string): Promise<number> {
  try {
    return (await storage.shardInfo(shard)).logStartOffset;
  } catch {
    return -1;
  }
}

/** The leader epoch this node stamps on stored batches and reports in Metadata. */
export const LEADER_EPOCH = 0;

/**
 * Appends produced batches to partition shards. Per shard, batches are ordered: each gets the
 * base offset it will be stored at written into its header (the CRC does not cover it, so
 * compressed bytes are untouched) before it is handed to storage. The next offset is tracked here
 * so that appends can be pipelined; if another writer appended meanwhile, Fetch corrects the base
 * offset when serving. Batches are handed to storage once the current pass of the event loop is
 * over, so the requests read together are written together.
 */
export class PartitionWriter {
  private readonly nextOffsets = new Map<string, number>();
  private readonly tails = new Map<string, Promise<unknown>>();
  /** Batches given their offsets and not yet handed to storage, in order. */
  private readonly waiting: Array<{
    shard: string;
    batch: RecordBatch;
    expectedOffset: number | undefined;
    resolve: (result: AppendResult) => void;
    reject: (error: unknown) => void;
  }> = [];
  private handOffScheduled = false;
  /** Per shard, the storing of the last batch handed over, until it settles. */
  private readonly lastStored = new Map<string, Promise<unknown>>();

  constructor(private readonly storage: StorageEngine) {}

  /**
   * Runs `task` after every earlier task of the same shard has released it. `task` receives a
   * function that hands one batch to storage and resolves once it is queued there, in order, with
   * `stored`, the promise of the append; given `expectedOffset`, the batch is stored there or not
   * at all (storage's conditional append). The shard is released when `task` settles: a task that
   * awaits `stored` holds the shard until the batch is durable (idempotent producers need that);
   * one that returns `stored` unawaited lets the next batch queue behind it at once.
   */
  async withShard<T>(
    topic: string,
    partition: number,
    task: (
      append: (batch: Buffer, maxTimestamp: number, expectedOffset?: number) => Promise<Appending>,
    ) => Promise<T>,
  ): Promise<T> {
    const shard = shardName(topic, partition);
    const previous = this.tails.get(shard) ?? Promise.resolve();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => gate);
    this.tails.set(shard, tail);
    await previous;
    try {
      return await task((batch, maxTimestamp, expectedOffset) =>
        this.append(shard, batch, maxTimestamp, expectedOffset),
      );
    } finally {
      release();
      if (this.tails.get(shard) === tail) this.tails.delete(shard);
    }
  }

  /**
   * Resolves once every batch handed to storage for the partition so far is stored or failed: a
   * task that appends only at the offset it read the log up to waits for this first, as it cannot
   * read what is still being stored.
   */
  async settled(topic: string, partition: number): Promise<void> {
    await this.lastStored.get(shardName(topic, partition));
  }

  private async append(
    shard: string,
    batch: Buffer,
    maxTimestamp: number,
    expectedOffset: number | undefined,
  ): Promise<Appending> {
    const expected =
      expectedOffset ?? this.nextOffsets.get(shard) ?? (await this.storage.shardInfo(shard)).nextOffset;
    const header = readBatchHeader(batch);
    const recordCount = header.lastOffsetDelta + 1;
    setBaseOffset(batch, expected);
    setPartitionLeaderEpoch(batch, LEADER_EPOCH);
    this.nextOffsets.set(shard, expected + recordCount);
    const handed = new Promise<AppendResult>((resolve, reject) => {
      this.waiting.push({
        shard,
        batch: { recordCount, maxTimestamp, data: batch },
        expectedOffset,
        resolve,
        reject,
      });
    });
    if (!this.handOffScheduled) {
      this.handOffScheduled = true;
      setImmediate(() => this.handOff());
    }
    const stored = handed.then(
      (result) => {
        if (result.baseOffset !== expected) this.nextOffsets.set(shard, result.lastOffset + 1);
        return result;
      },
      (error: unknown) => {
        this.nextOffsets.delete(shard);
        throw error;
      },
    );
    const settled = stored.catch(() => {});
    this.lastStored.set(shard, settled);
    void settled.then(() => {
      if (this.lastStored.get(shard) === settled) this.lastStored.delete(shard);
    });
    return { stored };
  }

  /**
   * Hands the batches queued since the last hand-off to storage, in order. Batches that arrive
   * together (the requests a pipelining producer sent at once, read in one pass of the event loop)
   * reach storage together, so it can write them with one durable write rather than one each.
   */
  private handOff(): void {
    this.handOffScheduled = false;
    const waiting = this.waiting.splice(0);
    for (const { shard, batch, expectedOffset, resolve, reject } of waiting) {
      let appending: Promise<AppendResult>;
      try {
        appending =
          expectedOffset === undefined
            ? this.storage.append(shard, [batch])
            : this.storage.append(shard, [batch], { expectedOffset });
      } catch (error) {
        reject(error);
        continue;
      }
      appending.then(resolve, reject);
    }
  }

  /** Forgets the tracked offsets of a topic's shards (deleted or recreated topics). */
  forgetTopic(topic: string): void {
    for (const shard of this.nextOffsets.keys()) {
      if (shard.startsWith(`${topic}/`)) this.nextOffsets.delete(shard);
    }
  }
}
