import { deleteThroughTxn, putThroughTxn } from './meta-ops.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  Logger,
  MetaEntry,
  MetaEvent,
  MetaListOptions,
  MetaPutOptions,
  MetaStore,
  MetaWatch,
  MetaWatchOptions,
} from '@robustmq/core';
import { ErrorCode, RobustMQError, silentLogger } from '@robustmq/core';
import type { MetaCommand, MetaOp } from './command.js';
import { decodeMetaCommand, encodeMetaCommand, MAX_COMMAND_BYTES } from './command.js';
import { readSnapshotFile, writeSnapshotFile } from './snapshot-file.js';
import type { MetaApplyResult, MetaOpResult } from './state-machine.js';
import { MetaStateMachine } from './state-machine.js';
import { WatchRegistry } from './watch-registry.js';
import { WriteAheadLog } from './wal.js';

export interface LocalMetaStoreOptions {
  /** Directory holding the log and the snapshot; created if missing. */
  dir: string;
  logger?: Logger;
  /** Snapshot the state and empty the log once the log holds this many bytes (default 64 MiB). */
  snapshotLogBytes?: number;
  /** Events kept for watches resuming `afterRevision` (default 10,000). */
  historyLimit?: number;
}

const LOG_FILE = 'meta.log';
const SNAPSHOT_FILE = 'meta.snapshot';
const DEFAULT_SNAPSHOT_LOG_BYTES = 64 * 1024 * 1024;

type Applied = Extract<MetaApplyResult, { ok: true }>;

interface PendingWrite {
  bytes: Uint8Array;
  resolve: (result: Applied) => void;
  reject: (error: unknown) => void;
}

/** Opens (recovering if needed) the durable standalone meta store in `options.dir`. */
export function openLocalMetaStore(options: LocalMetaStoreOptions): Promise<LocalMetaStore> {
  return LocalMetaStore.open(options);
}

/**
 * The standalone {@link MetaStore}: the meta state machine, made durable by a write-ahead log of its
 * commands on local disk. A write resolves once its command is fsync'ed and applied; writes that
 * arrive during an fsync share the next one (group commit). Reads see only durable writes. The log
 * is snapshotted and emptied as it grows; opening loads the snapshot and replays the log.
 */
export class LocalMetaStore implements MetaStore {
  private queue: PendingWrite[] = [];
  private flushing: Promise<void> | null = null;
  private failure: RobustMQError | null = null;
  private closed = false;
  private nextSnapshotAt: number;
  private readonly watches: WatchRegistry;

  private constructor(
    private readonly machine: MetaStateMachine,
    private readonly log: WriteAheadLog,
    private appliedIndex: number,
    private readonly snapshotPath: string,
    private readonly snapshotLogBytes: number,
    private readonly logger: Logger,
  ) {
    this.nextSnapshotAt = snapshotLogBytes;
    this.watches = new WatchRegistry(logger);
  }

  static async open(options: LocalMetaStoreOptions): Promise<LocalMetaStore> {
    const logger = (options.logger ?? silentLogger).child({ component: 'meta-store' });
    const snapshotLogBytes = options.snapshotLogBytes ?? DEFAULT_SNAPSHOT_LOG_BYTES;
    if (!(Number.isSafeInteger(snapshotLogBytes) && snapshotLogBytes > 0)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `snapshotLogBytes must be a positive integer, got ${snapshotLogBytes}`,
      );
    }
    await mkdir(options.dir, { recursive: true });
    const machine = new MetaStateMachine({ historyLimit: options.historyLimit });
    const snapshotPath = join(options.dir, SNAPSHOT_FILE);
    const snapshot = await readSnapshotFile(snapshotPath);
    if (snapshot !== null) machine.restore(snapshot.data);
    let appliedIndex = snapshot?.index ?? 0;

    const { log, records } = await WriteAheadLog.open(join(options.dir, LOG_FILE), logger);
    try {
      let lastLogged = 0;
      for (const record of records) {
        if (record.index <= appliedIndex) {
          lastLogged = record.index;
          continue;
        }
        const decoded = decodeRecord(record.index, appliedIndex, record.data);
        if (typeof decoded === 'string') {
          // A record that passed its checksum but cannot be applied: stop here rather than guess.
          logger.warn(
            { file: log.path, offset: record.offset, reason: decoded },
            'meta log cut at an unusable record',
          );
          await log.truncate(record.offset);
          break;
        }
        machine.apply(decoded);
        appliedIndex = record.index;
        lastLogged = record.index;
      }
      // Records all older than the snapshot would break the index sequence of the next append.
      if (log.size > 0 && lastLogged < appliedIndex) await log.truncate(0);
    } catch (error) {
      await log.close();
      throw error;
    }
    logger.info(
      { dir: options.dir, revision: machine.revision, keys: machine.size, appliedIndex, logBytes: log.size },
      'meta store opened',
    );
    return new LocalMetaStore(machine, log, appliedIndex, snapshotPath, snapshotLogBytes, logger);
  }

  get(key: string): Promise<MetaEntry | null> {
    return this.read(() => {
      const entry = this.machine.get(key);
      return entry === null ? null : copyEntry(entry);
    });
  }

  put(key: string, value: Uint8Array, options?: MetaPutOptions): Promise<number> {
    return putThroughTxn((ops) => this.txn(ops), key, value, options);
  }

  delete(key: string, options?: MetaPutOptions): Promise<boolean> {
    return deleteThroughTxn((ops) => this.txn(ops), key, options);
  }

  /**
   * Applies several puts and deletes atomically at one revision. Every `ifRevision` is checked
   * first; one mismatch throws `CONFLICT` and writes nothing. Resolves with one result per op.
   */
  async txn(ops: MetaOp[]): Promise<MetaOpResult[]> {
    this.checkOpen();
    if (this.failure !== null) throw this.failure;
    const bytes = encodeMetaCommand({ ops });
    const applied = await new Promise<Applied>((resolve, reject) => {
      this.queue.push({ bytes, resolve, reject });
      this.flushing ??= this.flush();
    });
    return applied.results;
  }

  list(prefix: string, options: MetaListOptions = {}): Promise<MetaEntry[]> {
    return this.read(() => this.machine.list(prefix, options).map(copyEntry));
  }

  watch(prefix: string, listener: (event: MetaEvent) => void, options: MetaWatchOptions = {}): MetaWatch {
    this.checkOpen();
    const { afterRevision } = options;
    if (afterRevision !== undefined && !(Number.isSafeInteger(afterRevision) && afterRevision >= 0)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `afterRevision must be a non-negative integer, got ${afterRevision}`,
      );
    }
    const backlog = afterRevision === undefined ? [] : this.machine.eventsAfter(afterRevision, prefix);
    return this.watches.add(prefix, listener, backlog);
  }

  revision(): Promise<number> {
    return this.read(() => this.machine.revision);
  }

  /** Waits for accepted writes to finish, ends every watch and closes the log. Later calls fail `CLOSED`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    this.watches.closeAll();
    await this.log.close();
    this.logger.info({ revision: this.machine.revision }, 'meta store closed');
  }

  private checkOpen(): void {
    if (this.closed) throw new RobustMQError(ErrorCode.Closed, 'meta store is closed');
  }

  /** Runs a read of the applied state, which stays consistent even after a failed log write. */
  private read<T>(query: () => T): Promise<T> {
    // A throw in the executor (CLOSED, a bad limit) becomes the rejection.
    return new Promise((resolve) => {
      this.checkOpen();
      resolve(query());
    });
  }

  /** Writes queued commands, a group per fsync, applying each group once durable. */
  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        try {
          await this.log.append(
            this.appliedIndex + 1,
            batch.map((write) => write.bytes),
          );
        } catch (error) {
          this.fail(error, batch);
          return;
        }
        for (const write of batch) this.apply(write);
        if (this.log.size >= this.nextSnapshotAt) await this.snapshot();
      }
    } finally {
      // Reset in the same synchronous step as the empty-queue check, so no write is left unflushed.
      this.flushing = null;
    }
  }

  private takeBatch(): PendingWrite[] {
    let bytes = 0;
    let count = 0;
    while (
      count < this.queue.length &&
      (count === 0 || bytes + this.queue[count]!.bytes.length <= MAX_COMMAND_BYTES)
    ) {
      bytes += this.queue[count]!.bytes.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private apply(write: PendingWrite): void {
    this.appliedIndex++;
    // Apply what was logged, decoded, exactly as recovery will: the caller's arrays may change later.
    const result = this.machine.apply(decodeMetaCommand(write.bytes));
    if (result.ok) {
      this.watches.publish(result.events);
      write.resolve(result);
    } else if (result.code === ErrorCode.Conflict) {
      write.reject(
        new RobustMQError(
          ErrorCode.Conflict,
          `meta key ${result.key}: expected revision ${result.expected}, found ${result.actual}`,
        ),
      );
    } else {
      write.reject(new RobustMQError(ErrorCode.InvalidArgument, result.message));
    }
  }

  /** A failed write or fsync leaves the log's tail unknown: refuse every write from now on. */
  private fail(error: unknown, batch: PendingWrite[]): void {
    this.failure = new RobustMQError(ErrorCode.Unavailable, 'meta store log write failed; reopen the store', {
      cause: error,
    });
    this.logger.error({ err: error }, 'meta log write failed');
    for (const write of [...batch, ...this.queue.splice(0)]) write.reject(this.failure);
  }

  private async snapshot(): Promise<void> {
    const index = this.appliedIndex;
    const data = this.machine.snapshot();
    try {
      await writeSnapshotFile(this.snapshotPath, { index, data });
      await this.log.truncate(0);
      this.nextSnapshotAt = this.snapshotLogBytes;
      this.logger.info(
        { index, revision: this.machine.revision, bytes: data.length },
        'meta snapshot written, log emptied',
      );
    } catch (error) {
      this.nextSnapshotAt = this.log.size + this.snapshotLogBytes;
      this.logger.error({ err: error }, 'meta snapshot failed; the log keeps growing until the next try');
    }
  }
}

/** The command a replayed record holds, or why it cannot be applied next. */
function decodeRecord(index: number, appliedIndex: number, data: Uint8Array): MetaCommand | string {
  if (index !== appliedIndex + 1)
    return `record index ${index} does not follow applied index ${appliedIndex}`;
  try {
    return decodeMetaCommand(data);
  } catch (error) {
    return (error as Error).message;
  }
}

function copyEntry(entry: MetaEntry): MetaEntry {
  return { ...entry, value: entry.value.slice() };
}
