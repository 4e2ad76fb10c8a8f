import { ErrorCode, RobustMQError, type AppendResult, type Counter, type Logger } from '@robustmq/core';
import type { RocksDatabase, WriteOp } from './binding.js';
import { encodeBlock, encodeNumber, type BatchHeader, type BlockSummary } from './codec.js';
import type { RocksDbSettings } from './engine-config.js';
import { batchKey, blockKey, nextOffsetKey } from './keys.js';
import type { Shard } from './shard.js';
import type { IndexedBatch } from './time-index.js';

/** An append waiting for its write. */
export interface PendingAppend {
  shard: Shard;
  /** The batches as stored values (copies of the caller's data). */
  values: Buffer[];
  headers: BatchHeader[];
  /** Whether the write that carries it must be synced (policies `fsync` and `group-commit`). */
  sync: boolean;
  /** Whether it is written at once rather than waiting for others (policies `fsync` and `none`). */
  immediate: boolean;
  /**
   * The offset its first batch must get for it to be stored (`AppendOptions.expectedOffset`),
   * checked where the write gives out offsets; undefined for an unconditional append.
   */
  expectedOffset: number | undefined;
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
}

/** Where an append's batches went; the log start is added once the write is done. */
type Offsets = Omit<AppendResult, 'logStartOffset'>;

interface ShardPlan {
  nextOffset: number;
  batches: IndexedBatch[];
  blocks: BlockSummary[];
}

/** One write batch for pending appends. */
interface WritePlan {
  ops: WriteOp[];
  plans: Map<Shard, ShardPlan>;
  /** The appends the write stores, in order, with their offsets. */
  stored: { entry: PendingAppend; offsets: Offsets }[];
  /** Conditional appends that would not get their expected offset, with the one they would get. */
  refused: { entry: PendingAppend; nextOffset: number }[];
}

export interface CommitMetrics {
  writes: Counter;
  batches: Counter;
}

function bytesOf(entry: PendingAppend): number {
  return entry.values.reduce((sum, value) => sum + value.length, 0);
}

/**
 * Turns appends into atomic RocksDB write batches. Offsets are given out when the write is built,
 * in arrival order per shard, and the batch keys, the shard's next offset and its time-index block
 * go in one write batch, so a crash never leaves a batch without its metadata. Appends under
 * `group-commit` wait until the end of the event-loop turn (or `groupCommitMs`), or until a write in
 * flight is done, and share one synced write; `fsync` and `none` appends are written at once, taking
 * along whatever is pending (synced if anything in the write needs it).
 */
export class CommitQueue {
  readonly #db: RocksDatabase;
  readonly #settings: RocksDbSettings;
  readonly #logger: Logger;
  readonly #metrics: CommitMetrics | undefined;
  #pending: PendingAppend[] = [];
  #pendingBytes = 0;
  #writing: Promise<void> | undefined;
  #timer: { cancel: () => void } | undefined;

  constructor(db: RocksDatabase, settings: RocksDbSettings, logger: Logger, metrics?: CommitMetrics) {
    this.#db = db;
    this.#settings = settings;
    this.#logger = logger;
    this.#metrics = metrics;
  }

  enqueue(entry: PendingAppend): void {
    this.#pending.push(entry);
    this.#pendingBytes += bytesOf(entry);
    if (entry.immediate || this.#pendingBytes >= this.#settings.groupCommitBytes) this.#start();
    else this.#schedule();
  }

  /** Resolves once no write is in flight, so a shard change can read settled state. */
  async settled(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  /** Writes what was held back for a busy shard, now that it is not. */
  kick(): void {
    if (this.#pending.length > 0) this.#start();
  }

  /** Writes everything still pending (on close, when no shard change runs any more). */
  async drain(): Promise<void> {
    for (;;) {
      await this.settled();
      if (this.#pending.length === 0) return;
      this.#start(true);
    }
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#writing !== undefined) return;
    const fire = () => {
      this.#timer = undefined;
      this.#start();
    };
    if (this.#settings.groupCommitMs === 0) {
      const immediate = setImmediate(fire);
      this.#timer = { cancel: () => clearImmediate(immediate) };
    } else {
      const timeout = setTimeout(fire, this.#settings.groupCommitMs);
      this.#timer = { cancel: () => clearTimeout(timeout) };
    }
  }

  #start(all = false): void {
    // A write in flight picks up what arrived meanwhile as soon as it is done.
    if (this.#writing !== undefined) return;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#writing = this.#write(all).finally(() => {
      this.#writing = undefined;
      if (this.#pending.some((entry) => !entry.shard.lock.busy)) this.#start();
    });
  }

  /** One write of every pending append whose shard is not busy (or of all, when `all`). */
  async #write(all: boolean): Promise<void> {
    const ready: PendingAppend[] = [];
    const held: PendingAppend[] = [];
    for (const entry of this.#pending) {
      if (!all && entry.shard.lock.busy && !entry.shard.deleted) held.push(entry);
      else ready.push(entry);
    }
    this.#pending = held;
    this.#pendingBytes = held.reduce((sum, entry) => sum + bytesOf(entry), 0);

    const live: PendingAppend[] = [];
    for (const entry of ready) {
      if (entry.shard.deleted) {
        entry.reject(new RobustMQError(ErrorCode.NotFound, `shard ${entry.shard.name} does not exist`));
      } else {
        live.push(entry);
      }
    }
    if (live.length === 0) return;
    let write: WritePlan;
    let sync = false;
    try {
      write = plan(live);
      sync = write.stored.some(({ entry }) => entry.sync);
      if (write.stored.length > 0) await this.#db.batch(write.ops, { sync });
    } catch (cause) {
      this.#logger.error({ err: cause, appends: live.length }, 'rocksdb append write failed');
      const error = new RobustMQError(
        ErrorCode.Internal,
        `rocksdb write failed: ${(cause as Error).message}`,
        {
          cause,
        },
      );
      for (const entry of live) entry.reject(error);
      return;
    }
    for (const { entry, nextOffset } of write.refused) {
      entry.reject(
        new RobustMQError(
          ErrorCode.Conflict,
          `append to ${entry.shard.name} expected offset ${entry.expectedOffset}, but the next offset is ${nextOffset}`,
        ),
      );
    }
    if (write.stored.length === 0) return;
    this.#metrics?.writes.inc({ sync: String(sync) });
    for (const [shard, shardPlan] of write.plans) {
      shard.index.applyAppend(shardPlan.blocks);
      shard.nextOffset = shardPlan.nextOffset;
      this.#metrics?.batches.inc(undefined, shardPlan.batches.length);
    }
    // Read once written: a shard change waits for the write in flight (`settled`), so this is the
    // log start as of the append's completion.
    for (const { entry, offsets } of write.stored) {
      entry.resolve({ ...offsets, logStartOffset: entry.shard.logStartOffset });
    }
    for (const [shard, shardPlan] of write.plans) shard.waiters.notify(shardPlan.nextOffset);
  }
}

/**
 * The write batch for `appends`: offsets given out in order from each shard's next offset, each
 * batch under its key, and per shard the grown time-index blocks and the new next offset. A
 * conditional append is checked against the offset it would get there, after every append before
 * it (the write in flight before this one has updated the shard's next offset). Nothing in memory
 * changes here, so a failed write leaves every shard as it was.
 */
function plan(appends: readonly PendingAppend[]): WritePlan {
  const ops: WriteOp[] = [];
  const plans = new Map<Shard, ShardPlan>();
  const stored: WritePlan['stored'] = [];
  const refused: WritePlan['refused'] = [];
  for (const entry of appends) {
    const { shard, values, headers, expectedOffset } = entry;
    let shardPlan = plans.get(shard);
    const nextOffset = shardPlan?.nextOffset ?? shard.nextOffset;
    if (expectedOffset !== undefined && expectedOffset !== nextOffset) {
      refused.push({ entry, nextOffset });
      continue;
    }
    if (shardPlan === undefined) {
      shardPlan = { nextOffset, batches: [], blocks: [] };
      plans.set(shard, shardPlan);
    }
    const baseOffset = shardPlan.nextOffset;
    values.forEach((value, i) => {
      const header = headers[i]!;
      const key = batchKey(shard.id, shardPlan.nextOffset);
      ops.push({ type: 'put', key, value });
      shardPlan.batches.push({
        ...header,
        baseOffset: shardPlan.nextOffset,
        bytes: key.length + value.length,
      });
      shardPlan.nextOffset += header.recordCount;
    });
    stored.push({ entry, offsets: { baseOffset, lastOffset: shardPlan.nextOffset - 1 } });
  }
  for (const [shard, shardPlan] of plans) {
    shardPlan.blocks = shard.index.planAppend(shardPlan.batches);
    for (const block of shardPlan.blocks) {
      ops.push({ type: 'put', key: blockKey(shard.id, block.firstOffset), value: encodeBlock(block) });
    }
    ops.push({ type: 'put', key: nextOffsetKey(shard.id), value: encodeNumber(shardPlan.nextOffset) });
  }
  return { ops, plans, stored, refused };
}
