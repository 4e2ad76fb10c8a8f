import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  RobustMQError,
  silentLogger,
  validateShardName,
  type AppendOptions,
  type AppendResult,
  type Logger,
  type Metrics,
  type ReadOptions,
  type ReadResult,
  type RecordBatch,
  type ShardConfig,
  type ShardInfo,
  type StorageEngine,
} from '@robustmq/core';
import { frameAppend, type AppendRequest } from './append-request.js';
import { DEFAULT_SETTINGS, type JournalSettings } from './config.js';
import { syncDirectory } from './files.js';
import { IndexCache } from './index-cache.js';
import { journalMetrics, noopMetrics } from './metrics.js';
import type { OffloadedSegmentReader, SealedSegment, SegmentSealedListener } from './offload.js';
import { ReadHandleCache } from './read-handles.js';
import { ReadThreads } from './read-threads.js';
import { Shard, toRobustMQError, type ShardContext } from './shard.js';
import { mergeJournalShardConfig } from './shard-config.js';
import { segmentFileStem, shardDirName } from './shard-dir.js';
import { writeShardMeta } from './shard-meta.js';
import { defaultMaxOpenFiles, WriteHandleBudget } from './write-handles.js';

/** How to open a journal directly (the server goes through the default export instead). */
export interface JournalOptions extends Partial<JournalSettings> {
  /** The directory the journal owns: `shards/` holds one directory per shard, `tmp/` scratch space. */
  dir: string;
  logger?: Logger;
  metrics?: Metrics;
  /** Called whenever a shard's active segment is sealed (tiering uploads it). Must not throw. */
  onSegmentSealed?: SegmentSealedListener;
  /** Reads segments offloaded with {@link Journal.offloadSegment}. */
  offloadedReader?: OffloadedSegmentReader;
  /** Wall-clock time in ms, which segment ages (`segmentMs`) are measured by; default `Date.now`. */
  now?: () => number;
}

/** Shards opened (or closed) at the same time while opening (or closing) the engine. */
const OPEN_CONCURRENCY = 8;
/** Sealed segments of an engine that keep a read handle open between reads, most recent first. */
const MAX_KEPT_READ_HANDLES = 64;

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, message);
}

function checkOffset(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`${name} must be a non-negative integer, got ${String(value)}`);
  }
}

/**
 * The segment-log storage engine: every shard a directory of segment files on local disk. See
 * the package README for the file layout and the durability policies.
 */
export class Journal implements StorageEngine {
  readonly storageClass = 'file';
  readonly dir: string;
  readonly #shardsDir: string;
  readonly #tmpDir: string;
  readonly #ctx: ShardContext;
  readonly #defaults: ShardConfig;
  readonly #shards = new Map<string, Shard>();
  /** Names being created or deleted right now, with the creation or deletion. */
  readonly #busy = new Map<string, Promise<unknown>>();
  /** Creations and deletions in flight, which close waits for. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | null = null;

  private constructor(dir: string, ctx: ShardContext, defaults: ShardConfig) {
    this.dir = dir;
    this.#shardsDir = join(dir, 'shards');
    this.#tmpDir = join(dir, 'tmp');
    this.#ctx = ctx;
    this.#defaults = defaults;
  }

  /** Opens (creating if needed) the journal in `options.dir`, recovering every shard. */
  static async open(options: JournalOptions): Promise<Journal> {
    const settings: JournalSettings = { ...DEFAULT_SETTINGS };
    for (const key of Object.keys(DEFAULT_SETTINGS) as (keyof JournalSettings)[]) {
      if (options[key] !== undefined) (settings as unknown as Record<string, unknown>)[key] = options[key];
    }
    const logger = options.logger ?? silentLogger;
    const ctx: ShardContext = {
      logger,
      metrics: journalMetrics(options.metrics ?? noopMetrics),
      indexCache: new IndexCache(settings.indexCacheBytes),
      readHandles: new ReadHandleCache(MAX_KEPT_READ_HANDLES, (error) =>
        logger.warn({ err: error }, 'could not close a segment read handle'),
      ),
      writeHandles: new WriteHandleBudget(
        settings.maxOpenFiles > 0 ? settings.maxOpenFiles : await defaultMaxOpenFiles(),
        (error) => logger.warn({ err: error }, 'could not close a segment log handle'),
      ),
      groupCommitMs: settings.groupCommitMs,
      groupCommitBytes: settings.groupCommitBytes,
      indexIntervalBytes: settings.indexIntervalBytes,
      offloadedReader: options.offloadedReader ?? null,
      readThreads: settings.readThreads > 0 ? ReadThreads.shared(settings.readThreads) : null,
      onSegmentSealed: options.onSegmentSealed ?? null,
      now: options.now ?? Date.now,
    };
    const defaults: ShardConfig = {
      ...DEFAULT_SHARD_CONFIG,
      durability: settings.defaultDurability,
      segmentBytes: settings.defaultSegmentBytes,
    };
    const journal = new Journal(options.dir, ctx, defaults);
    await journal.#load();
    return journal;
  }

  async #load(): Promise<void> {
    await mkdir(this.#shardsDir, { recursive: true });
    // Half-made shards and deleted ones waiting for removal; neither is visible.
    await rm(this.#tmpDir, { recursive: true, force: true });
    await mkdir(this.#tmpDir, { recursive: true });
    const entries = (await readdir(this.#shardsDir, { withFileTypes: true })).filter((e) => e.isDirectory());
    const started = performance.now();
    try {
      for (let i = 0; i < entries.length; i += OPEN_CONCURRENCY) {
        const opened = await Promise.all(
          entries
            .slice(i, i + OPEN_CONCURRENCY)
            .map((e) => Shard.open(join(this.#shardsDir, e.name), this.#ctx)),
        );
        for (const shard of opened) {
          if (this.#shards.has(shard.name)) {
            throw new RobustMQError(
              ErrorCode.Corrupt,
              `two directories in ${this.#shardsDir} hold shard ${shard.name}`,
            );
          }
          this.#shards.set(shard.name, shard);
        }
      }
    } catch (error) {
      await Promise.allSettled([...this.#shards.values()].map((s) => s.close()));
      throw error;
    }
    this.#ctx.logger.info(
      {
        dir: this.dir,
        shards: this.#shards.size,
        maxOpenFiles: this.#ctx.writeHandles.max,
        ms: Math.round(performance.now() - started),
      },
      'journal opened',
    );
  }

  #checkOpen(): void {
    if (this.#closing !== null) throw new RobustMQError(ErrorCode.Closed, 'the journal is closed');
  }

  #shard(name: string): Shard {
    this.#checkOpen();
    const shard = this.#shards.get(name);
    if (shard !== undefined) return shard; // Its name was checked when it was created or found.
    validateShardName(name);
    throw new RobustMQError(ErrorCode.NotFound, `shard ${name} does not exist`);
  }

  /** Runs a public call, turning unexpected errors (I/O) into INTERNAL RobustMQErrors. */
  async #call<T>(body: () => T | Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw toRobustMQError(error);
    }
  }

  /** Runs a creation or deletion that close must wait for. */
  async #track<T>(body: () => Promise<T>): Promise<T> {
    const running = this.#call(body);
    this.#inFlight.add(running);
    try {
      return await running;
    } finally {
      this.#inFlight.delete(running);
    }
  }

  createShard(shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.#track(async () => {
      this.#checkOpen();
      validateShardName(shard);
      const merged = mergeJournalShardConfig(this.#defaults, config);
      // While the name is being created or deleted, the answer is what that leaves: ALREADY_EXISTS
      // only once the shard can be used, as the caller goes on to use it.
      for (let pending = this.#busy.get(shard); pending; pending = this.#busy.get(shard)) {
        await pending.catch(() => {});
        this.#checkOpen();
      }
      if (this.#shards.has(shard)) {
        throw new RobustMQError(ErrorCode.AlreadyExists, `shard ${shard} already exists`);
      }
      return this.#whileBusy(shard, async () => {
        // Built aside and renamed into place, so a crash never leaves a half-made shard visible.
        const staging = join(this.#tmpDir, `create-${randomUUID()}`);
        await mkdir(staging);
        await writeShardMeta(staging, { name: shard, config: merged, logStartOffset: 0 });
        await (await open(join(staging, `${segmentFileStem(0)}.log`), 'wx')).close();
        await syncDirectory(staging);
        const dir = join(this.#shardsDir, shardDirName(shard));
        await rename(staging, dir);
        await syncDirectory(this.#shardsDir);
        const opened = await Shard.open(dir, this.#ctx);
        this.#shards.set(shard, opened);
        return opened.info();
      });
    });
  }

  /** Runs the creation or deletion of a shard, marking its name busy meanwhile. */
  async #whileBusy<T>(shard: string, body: () => Promise<T>): Promise<T> {
    const running = body();
    this.#busy.set(shard, running);
    try {
      return await running;
    } finally {
      this.#busy.delete(shard);
    }
  }

  deleteShard(shard: string): Promise<void> {
    return this.#track(async () => {
      const target = this.#shard(shard);
      this.#shards.delete(shard);
      await this.#whileBusy(shard, async () => {
        await target.destroy();
        // One rename makes the deletion atomic; the files go afterwards (or on the next open).
        const grave = join(this.#tmpDir, `delete-${randomUUID()}`);
        await rename(target.dir, grave);
        await syncDirectory(this.#shardsDir);
        await rm(grave, { recursive: true, force: true });
      });
    });
  }

  listShards(): Promise<string[]> {
    return this.#call(() => {
      this.#checkOpen();
      return [...this.#shards.keys()].sort();
    });
  }

  shardInfo(shard: string): Promise<ShardInfo> {
    return this.#call(() => this.#shard(shard).info());
  }

  updateShardConfig(shard: string, config: Partial<ShardConfig>): Promise<ShardInfo> {
    return this.#call(async () => {
      const target = this.#shard(shard);
      if (config === undefined) throw invalid('config must be an object');
      return target.updateConfig(mergeJournalShardConfig(target.config, config));
    });
  }

  /**
   * {@link StorageEngine.append}. Batches of more than 4 KiB are written from the caller's `data`
   * without a copy: leave it unchanged until the returned promise settles (a change meanwhile may
   * store a frame that fails its checksum, which reads refuse). Smaller batches are copied at once.
   */
  append(shard: string, batches: readonly RecordBatch[], options?: AppendOptions): Promise<AppendResult> {
    // The hottest call: no async wrapper, as the shard rejects only with RobustMQErrors.
    let request: AppendRequest;
    let target: Shard;
    try {
      target = this.#shard(shard);
      request = frameAppend(shard, batches, target.config.maxBatchBytes, options);
    } catch (error) {
      return Promise.reject(toRobustMQError(error));
    }
    return target.append(request);
  }

  read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
    return this.#call(async () => {
      const target = this.#shard(shard);
      checkOffset('offset', offset);
      const maxBytes: unknown = (options as Partial<ReadOptions> | undefined)?.maxBytes;
      if (typeof maxBytes !== 'number' || Number.isNaN(maxBytes) || maxBytes < 0) {
        throw invalid(`maxBytes must be a non-negative number, got ${String(maxBytes)}`);
      }
      const into: unknown = (options as Partial<ReadOptions>).into;
      if (into !== undefined && !(into instanceof Uint8Array)) {
        throw invalid('into must be a Uint8Array (or Buffer) when given');
      }
      return target.read(offset, maxBytes, into);
    });
  }

  waitForData(shard: string, offset: number, timeoutMs: number): Promise<void> {
    return this.#call(async () => {
      const target = this.#shard(shard);
      checkOffset('offset', offset);
      if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
        throw invalid(`timeoutMs must be a non-negative number, got ${String(timeoutMs)}`);
      }
      return target.waitForData(offset, timeoutMs);
    });
  }

  offsetForTimestamp(shard: string, timestamp: number): Promise<number | null> {
    return this.#call(async () => {
      const target = this.#shard(shard);
      if (typeof timestamp !== 'number' || Number.isNaN(timestamp)) {
        throw invalid(`timestamp must be a number, got ${String(timestamp)}`);
      }
      return target.offsetForTimestamp(timestamp);
    });
  }

  deleteBefore(shard: string, offset: number): Promise<number> {
    return this.#call(async () => {
      const target = this.#shard(shard);
      checkOffset('offset', offset);
      return target.deleteBefore(offset);
    });
  }

  enforceRetention(now: number): Promise<void> {
    return this.#call(async () => {
      this.#checkOpen();
      if (typeof now !== 'number' || !Number.isFinite(now))
        throw invalid(`now must be a finite number, got ${String(now)}`);
      const failures: unknown[] = [];
      for (const shard of [...this.#shards.values()]) {
        try {
          await shard.enforceRetention(now);
        } catch (error) {
          this.#ctx.logger.error({ err: error, shard: shard.name }, 'retention failed');
          failures.push(error);
        }
      }
      if (failures.length > 0) throw failures[0];
    });
  }

  /**
   * The sealed segments of a shard (every segment but the active one), oldest first, with their
   * offsets, sizes and whether they are offloaded: what tiering works from.
   */
  sealedSegments(shard: string): Promise<SealedSegment[]> {
    return this.#call(() => this.#shard(shard).sealedSegments());
  }

  /**
   * Drops the local log of a sealed segment once a copy is kept elsewhere (call only after the
   * copy is confirmed). Its index files stay and reads of its offsets go to the journal's
   * `offloadedReader`; retention and `deleteBefore` still count and drop it. Resolves false when
   * the shard has no such local sealed segment (any more): retention removed it, it was offloaded
   * already, or it is damaged. A journal opened without an `offloadedReader` refuses with
   * INVALID_ARGUMENT.
   */
  offloadSegment(shard: string, baseOffset: number): Promise<boolean> {
    return this.#call(async () => {
      const target = this.#shard(shard);
      checkOffset('baseOffset', baseOffset);
      // Without a reader the segment's records would become unreadable.
      if (this.#ctx.offloadedReader === null)
        throw invalid('the journal was opened without an offloadedReader');
      return target.offloadSegment(baseOffset);
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      const shards = [...this.#shards.values()];
      this.#shards.clear();
      // A few at a time: each one opens files to sync and write its indexes and clean marker.
      let failure: { reason: unknown } | null = null;
      for (let i = 0; i < shards.length; i += OPEN_CONCURRENCY) {
        const results = await Promise.allSettled(shards.slice(i, i + OPEN_CONCURRENCY).map((s) => s.close()));
        failure ??= results.find((r): r is PromiseRejectedResult => r.status === 'rejected') ?? null;
      }
      if (failure !== null) throw toRobustMQError(failure.reason);
    })();
    return this.#closing;
  }
}

/** Opens a journal directly, without the server's config section. */
export function openJournal(options: JournalOptions): Promise<Journal> {
  return Journal.open(options);
}
