import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ErrorCode,
  RobustMQError,
  type AppendOptions,
  type AppendResult,
  type Logger,
  type MetaEntry,
  type MetaEvent,
  type MetaListOptions,
  type MetaPutOptions,
  type MetaStore,
  type MetaWatch,
  type MetaWatchOptions,
  type ReadOptions,
  type ReadResult,
  type RecordBatch,
  type ShardConfig,
  type ShardInfo,
  type StorageEngine,
} from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { parseSettings } from '../../src/config.js';
import { KafkaPlugin } from '../../src/plugin.js';
import { testBrokerContext } from './broker-context.js';

/** The storage calls a test can make fail. */
export type StorageCall =
  | 'createShard'
  | 'shardInfo'
  | 'append'
  | 'read'
  | 'offsetForTimestamp'
  | 'deleteBefore'
  | 'updateShardConfig';

/** What a storage engine throws when the thing it stands on is down (a bucket, a journal node). */
export function unavailable(): RobustMQError {
  return new RobustMQError(ErrorCode.Unavailable, 'the bucket cannot serve now: connect ECONNREFUSED');
}

/** What the journal and RocksDB throw when the disk is full: an I/O error with the system error as cause. */
export function diskFull(): RobustMQError {
  const cause = Object.assign(new Error('ENOSPC: no space left on device, write'), {
    code: 'ENOSPC',
    errno: -28,
    syscall: 'write',
  });
  return new RobustMQError(ErrorCode.Internal, `journal I/O failed: ${cause.message}`, { cause });
}

/** What RocksDB reports for a full disk: its own status text, no system error code. */
export function rocksDiskFull(): RobustMQError {
  const cause = new Error('IO error: No space left on device: While appending to file: 000012.log');
  return new RobustMQError(ErrorCode.Internal, `rocksdb write failed: ${cause.message}`, { cause });
}

/**
 * A memory engine whose calls throw on demand, on shards whose name starts with a prefix: a
 * storage outage as the broker sees it.
 */
export class FaultyStorage implements StorageEngine {
  readonly inner = new MemoryStorageEngine();
  private readonly faults = new Map<StorageCall, { prefix: string; error: () => Error }>();
  /** How many calls have failed so far. */
  hits = 0;
  private lateFor: string | null = null;
  /** Per shard, an append answered TIMEOUT that storage has not carried out yet. */
  private readonly late = new Map<string, () => void>();

  /**
   * The next append to a shard named `prefix...` fails with TIMEOUT at once but is carried out
   * later, just before the next append to that shard: as a journal node does with an append it
   * queued and then answered too late, so the retry is queued behind it.
   */
  landLate(prefix: string): void {
    this.lateFor = prefix;
  }

  /** From now on `call` on shards named `prefix...` throws `error()`. */
  fail(call: StorageCall, prefix: string, error: () => Error): void {
    this.faults.set(call, { prefix, error });
  }

  /** Every call works again. */
  heal(): void {
    this.faults.clear();
    this.lateFor = null;
    for (const land of this.late.values()) land();
    this.late.clear();
  }

  private check(call: StorageCall, shard: string): void {
    const fault = this.faults.get(call);
    if (fault && shard.startsWith(fault.prefix)) {
      this.hits++;
      throw fault.error();
    }
  }

  async createShard(shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    this.check('createShard', shard);
    return this.inner.createShard(shard, config);
  }
  deleteShard(shard: string): Promise<void> {
    return this.inner.deleteShard(shard);
  }
  listShards(): Promise<string[]> {
    return this.inner.listShards();
  }
  async shardInfo(shard: string): Promise<ShardInfo> {
    this.check('shardInfo', shard);
    return this.inner.shardInfo(shard);
  }
  async updateShardConfig(shard: string, config: Partial<ShardConfig>): Promise<ShardInfo> {
    this.check('updateShardConfig', shard);
    return this.inner.updateShardConfig(shard, config);
  }
  async append(
    shard: string,
    batches: readonly RecordBatch[],
    options?: AppendOptions,
  ): Promise<AppendResult> {
    this.check('append', shard);
    const earlier = this.late.get(shard);
    this.late.delete(shard);
    earlier?.();
    if (this.lateFor !== null && shard.startsWith(this.lateFor)) {
      this.lateFor = null;
      this.hits++;
      const copies = batches.map((batch) => ({ ...batch, data: new Uint8Array(batch.data) }));
      this.late.set(shard, () => void this.inner.append(shard, copies, options).catch(() => {}));
      throw new RobustMQError(ErrorCode.Timeout, 'the journal node did not answer the append in time');
    }
    return this.inner.append(shard, batches, options);
  }
  async read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
    this.check('read', shard);
    return this.inner.read(shard, offset, options);
  }
  waitForData(shard: string, offset: number, timeoutMs: number): Promise<void> {
    return this.inner.waitForData(shard, offset, timeoutMs);
  }
  async offsetForTimestamp(shard: string, timestamp: number): Promise<number | null> {
    this.check('offsetForTimestamp', shard);
    return this.inner.offsetForTimestamp(shard, timestamp);
  }
  async deleteBefore(shard: string, offset: number): Promise<number> {
    this.check('deleteBefore', shard);
    return this.inner.deleteBefore(shard, offset);
  }
  enforceRetention(now: number): Promise<void> {
    return this.inner.enforceRetention(now);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A meta store whose reads and writes of keys under a prefix throw on demand. */
export class FaultyMeta implements MetaStore {
  private fault: { prefix: string; error: () => Error } | null = null;

  constructor(readonly inner: MetaStore) {}

  /** From now on every call on keys starting with `prefix` throws `error()`. */
  fail(prefix: string, error: () => Error): void {
    this.fault = { prefix, error };
  }

  heal(): void {
    this.fault = null;
  }

  private check(key: string): void {
    if (this.fault && key.startsWith(this.fault.prefix)) throw this.fault.error();
  }

  async get(key: string): Promise<MetaEntry | null> {
    this.check(key);
    return this.inner.get(key);
  }
  async put(key: string, value: Uint8Array, options?: MetaPutOptions): Promise<number> {
    this.check(key);
    return this.inner.put(key, value, options);
  }
  async delete(key: string, options?: MetaPutOptions): Promise<boolean> {
    this.check(key);
    return this.inner.delete(key, options);
  }
  async list(prefix: string, options?: MetaListOptions): Promise<MetaEntry[]> {
    this.check(prefix);
    return this.inner.list(prefix, options);
  }
  watch(prefix: string, listener: (event: MetaEvent) => void, options?: MetaWatchOptions): MetaWatch {
    return this.inner.watch(prefix, listener, options);
  }
  revision(): Promise<number> {
    return this.inner.revision();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A logger that keeps every line, flattened to its fields and message. */
export function recordingLogger(lines: Array<Record<string, unknown>>, bindings: object = {}): Logger {
  const at =
    (level: string) =>
    (fields: object | string, message?: string): void => {
      if (typeof fields === 'string') lines.push({ ...bindings, level, msg: fields });
      else lines.push({ ...bindings, ...fields, level, msg: message });
    };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (more) => recordingLogger(lines, { ...bindings, ...more }),
  };
}

/** The Kafka plugin in this process, on storage and a meta store that fail on demand, on loopback. */
export interface FaultyNode {
  port: number;
  storage: FaultyStorage;
  meta: FaultyMeta;
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts the plugin over a {@link FaultyStorage} and a {@link FaultyMeta}, on a free loopback port. */
export async function startFaultyNode(kafka: Record<string, unknown> = {}): Promise<FaultyNode> {
  const dir = await mkdtemp(join(tmpdir(), 'robustmq-kafka-faulty-'));
  const logs: Array<Record<string, unknown>> = [];
  const logger = recordingLogger(logs);
  const meta = new FaultyMeta(await openLocalMetaStore({ dir, logger }));
  const storage = new FaultyStorage();
  const context = testBrokerContext({ storage, meta, logger });
  const plugin = new KafkaPlugin(parseSettings({ port: 0, ...kafka }));
  await plugin.start(context);
  const server: Server = createServer((socket) =>
    plugin.accept(socket, {
      listener: 'tcp',
      transport: 'tcp',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    storage,
    meta,
    logs,
    async stop() {
      await plugin.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await storage.close();
      await meta.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
