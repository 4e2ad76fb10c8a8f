import type { BlockSummary } from './codec.js';

/** A block closes once it holds this many batches, so a timestamp lookup scans at most this many. */
export const BLOCK_MAX_BATCHES = 256;
/** ... or this many bytes, which bounds what a lookup or a retention step reads. */
export const BLOCK_MAX_BYTES = 1024 * 1024;

/** What the index needs to know of one stored batch. */
export interface IndexedBatch {
  baseOffset: number;
  recordCount: number;
  maxTimestamp: number;
  /** Bytes the batch occupies in the database (key and value). */
  bytes: number;
}

/**
 * The sparse time index of one shard, kept in memory and persisted block by block: consecutive
 * batches are grouped in blocks that record their offset range, size and largest timestamp. It
 * answers "which block holds the first batch with a max timestamp at or after T" by binary search
 * over the running maximum, and keeps the shard's size.
 */
export class TimeIndex {
  #blocks: BlockSummary[];
  /** `runningMax[i]` is the largest timestamp in blocks 0..i, so it never decreases. */
  #runningMax: number[] = [];
  #bytes = 0;

  constructor(blocks: readonly BlockSummary[] = []) {
    this.#blocks = [...blocks];
    this.#recompute();
  }

  get blocks(): readonly BlockSummary[] {
    return this.#blocks;
  }

  /** Bytes of every batch the index covers. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The blocks that appending `batches` (consecutive, following the last block) rewrites or adds:
   * the last block grown while it has room, then new blocks. The index itself is unchanged until
   * {@link applyAppend}, so a failed write leaves it as it was.
   */
  planAppend(batches: readonly IndexedBatch[]): BlockSummary[] {
    const changed: BlockSummary[] = [];
    const last = this.#blocks.at(-1);
    let open = last !== undefined && hasRoom(last) ? { ...last } : undefined;
    if (open !== undefined) changed.push(open);
    for (const batch of batches) {
      if (open === undefined || !hasRoom(open)) {
        open = {
          firstOffset: batch.baseOffset,
          endOffset: batch.baseOffset,
          batches: 0,
          bytes: 0,
          maxTimestamp: Number.NEGATIVE_INFINITY,
        };
        changed.push(open);
      }
      open.endOffset = batch.baseOffset + batch.recordCount;
      open.batches += 1;
      open.bytes += batch.bytes;
      open.maxTimestamp = Math.max(open.maxTimestamp, batch.maxTimestamp);
    }
    return changed;
  }

  /** Takes in blocks from {@link planAppend} once they are written. */
  applyAppend(changed: readonly BlockSummary[]): void {
    for (const block of changed) {
      const last = this.#blocks.at(-1);
      if (last !== undefined && last.firstOffset === block.firstOffset) {
        this.#bytes += block.bytes - last.bytes;
        this.#blocks[this.#blocks.length - 1] = block;
        const before = this.#runningMax.at(-2) ?? Number.NEGATIVE_INFINITY;
        this.#runningMax[this.#runningMax.length - 1] = Math.max(before, block.maxTimestamp);
      } else {
        this.#bytes += block.bytes;
        this.#blocks.push(block);
        this.#runningMax.push(
          Math.max(this.#runningMax.at(-1) ?? Number.NEGATIVE_INFINITY, block.maxTimestamp),
        );
      }
    }
  }

  /**
   * Index of the first block that holds a batch with a max timestamp at or after `timestamp`, or
   * -1 when no block does.
   */
  firstBlockReaching(timestamp: number): number {
    let low = 0;
    let high = this.#runningMax.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#runningMax[middle]! >= timestamp) high = middle;
      else low = middle + 1;
    }
    return low < this.#blocks.length ? low : -1;
  }

  /**
   * Drops the first `dropped` blocks and, when given, replaces the block after them with `head`
   * (the same block cut at the front).
   */
  trimFront(dropped: number, head: BlockSummary | undefined): void {
    this.#blocks.splice(0, dropped);
    if (head !== undefined) this.#blocks[0] = head;
    this.#recompute();
  }

  #recompute(): void {
    let max = Number.NEGATIVE_INFINITY;
    this.#runningMax = this.#blocks.map((block) => (max = Math.max(max, block.maxTimestamp)));
    this.#bytes = this.#blocks.reduce((sum, block) => sum + block.bytes, 0);
  }
}

function hasRoom(block: BlockSummary): boolean {
  return block.batches < BLOCK_MAX_BATCHES && block.bytes < BLOCK_MAX_BYTES;
}
