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
    const sync = live.some((entry) => entry.sync);
    let write: { ops: WriteOp[]; plans: Map<Shard, ShardPlan>; results: Offsets[] };
    try {
      write = plan(live);
      await this.#db.batch(write.ops, { sync });
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
    this.#metrics?.writes.inc({ sync: String(sync) });
    for (const [shard, shardPlan] of write.plans) {
      shard.index.applyAppend(shardPlan.blocks);
      shard.nextOffset = shardPlan.nextOffset;
      this.#metrics?.batches.inc(undefined, shardPlan.batches.length);
    }
    // Read once written: a shard change waits for the write in flight (`settled`), so this is the
    // log start as of the append's completion.
    live.forEach((entry, i) =>
      entry.resolve({ ...write.results[i]!, logStartOffset: entry.shard.logStartOffset }),
    );
    for (const [shard, shardPlan] of write.plans) shard.waiters.notify(shardPlan.nextOffset);
  }
}

/**
 * The write batch for `appends`: offsets given out in order from each shard's next offset, each
 * batch under its key, and per shard the grown time-index blocks and the new next offset. Nothing
 * in memory changes here, so a failed write leaves every shard as it was.
 */
function plan(appends: readonly PendingAppend[]): {
  ops: WriteOp[];
  plans: Map<Shard, ShardPlan>;
  results: Offsets[];
} {
  const ops: WriteOp[] = [];
  const plans = new Map<Shard, ShardPlan>();
  const results = appends.map(({ shard, values, headers }) => {
    let shardPlan = plans.get(shard);
    if (shardPlan === undefined) {
      shardPlan = { nextOffset: shard.nextOffset, batches: [], blocks: [] };
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
    return { baseOffset, lastOffset: shardPlan.nextOffset - 1 };
  });
  for (const [shard, shardPlan] of plans) {
    shardPlan.blocks = shard.index.planAppend(shardPlan.batches);
    for (const block of shardPlan.blocks) {
      ops.push({ type: 'put', key: blockKey(shard.id, block.firstOffset), value: encodeBlock(block) });
    }
    ops.push({ type: 'put', key: nextOffsetKey(shard.id), value: encodeNumber(shardPlan.nextOffset) });
  }
  return { ops, plans, results };
}
