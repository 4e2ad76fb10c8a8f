import {
  ErrorCode,
  isRobustMQError,
  RobustMQError,
  validateShardName,
  type Logger,
  type Metrics,
  type ReadResult,
  type ShardConfig,
  type StorageEngine,
} from '@robustmq/core';
import { DEFAULT_MAX_FRAME_BYTES, type CallContext, type RpcServer } from '@robustmq/rpc';
import { EpochFence } from './epochs.js';
import { journalServerMetrics, type JournalServerMetrics } from './server-metrics.js';
import {
  decodeBatches,
  encodeAppendReply,
  encodeReadReply,
  epochField,
  expectedOffsetField,
  Method,
  requestFields,
  STORED_BATCH_OVERHEAD_BYTES,
} from './wire.js';

export interface JournalServiceOptions {
  /** The engine to serve. The service never closes it: whoever opened it does. */
  engine: StorageEngine;
  logger: Logger;
  metrics?: Metrics;
  /** The RPC server's frame limit; read replies are kept under it. Default 64 MiB. */
  maxFrameBytes?: number;
}

/** The journal methods registered on an RPC server, and the shards' leader-epoch fence. */
export interface JournalService {
  /**
   * Raises a shard's leader epoch, as the placement in the meta service says: appends and
   * deleteBefore calls carrying an older epoch are then refused with CONFLICT.
   */
  fence(shard: string, epoch: number): void;
  /** The highest leader epoch this server has seen for `shard`, if any. */
  epochOf(shard: string): number | undefined;
}

/** Room kept in a read reply's frame for everything but the batch data. */
const REPLY_HEADROOM_BYTES = 64 * 1024;

/**
 * Registers the StorageEngine calls as `journal.*` methods on `rpc`, so a node can serve its
 * journal on the same internal RPC port as its other services. {@link createJournalServer} is the
 * stand-alone form.
 */
export function serveJournal(rpc: RpcServer, options: JournalServiceOptions): JournalService {
  const { engine } = options;
  const logger = options.logger.child({ component: 'journal-server' });
  const metrics = journalServerMetrics(options.metrics);
  const fence = new EpochFence();
  const readBudget = (options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES) - REPLY_HEADROOM_BYTES;

  const handle = <Res>(
    name: keyof typeof Method,
    run: (fields: Record<string, unknown>, ctx: CallContext) => Promise<Res>,
  ): void => {
    rpc.handle(Method[name], async (body, ctx) => {
      const started = performance.now();
      try {
        return await run(requestFields(body, Method[name]), ctx);
      } catch (error) {
        throw fromEngine(error);
      } finally {
        metrics.callSeconds.observe({ method: name }, (performance.now() - started) / 1000);
      }
    });
  };

  handle('createShard', (f) => engine.createShard(f.shard as string, f.config as Partial<ShardConfig>));
  handle('deleteShard', async (f) => {
    await engine.deleteShard(f.shard as string);
    fence.forget(f.shard as string);
  });
  handle('listShards', () => engine.listShards());
  handle('shardInfo', (f) => engine.shardInfo(f.shard as string));
  handle('updateShardConfig', (f) =>
    engine.updateShardConfig(f.shard as string, f.config as Partial<ShardConfig>),
  );
  handle('append', async (f) => {
    const shard = f.shard as string;
    const batches = decodeBatches(f.batches);
    const expectedOffset = expectedOffsetField(f);
    const fresh = admit(fence, metrics, shard, epochField(f), 'append');
    try {
      // Never abandoned once started, even if the caller gives up: the engine append runs to its
      // end, and the caller treats its TIMEOUT or UNAVAILABLE as "may have been stored".
      const result = await engine.append(
        shard,
        batches,
        expectedOffset === undefined ? undefined : { expectedOffset },
      );
      metrics.appendedBytes.inc(
        undefined,
        batches.reduce((sum, b) => sum + b.data.byteLength, 0),
      );
      return encodeAppendReply(result);
    } catch (error) {
      if (fresh && isRobustMQError(error, ErrorCode.NotFound)) fence.forget(shard);
      throw error;
    }
  });
  handle('read', async (f) => {
    const requested = f.maxBytes;
    const maxBytes = typeof requested === 'number' && requested > readBudget ? readBudget : requested;
    const result = fitFrame(
      await engine.read(f.shard as string, f.offset as number, { maxBytes: maxBytes as number }),
      readBudget,
    );
    metrics.readBytes.inc(
      undefined,
      result.batches.reduce((sum, b) => sum + b.data.byteLength, 0),
    );
    return encodeReadReply(result);
  });
  handle('waitForData', async (f, ctx) => {
    let timeoutMs = f.timeoutMs;
    // The engine need not wait past the moment the caller stops listening.
    if (typeof timeoutMs === 'number' && timeoutMs >= 0 && ctx.deadline !== undefined) {
      timeoutMs = Math.min(timeoutMs, Math.max(0, ctx.deadline - Date.now()));
    }
    await unlessAborted(
      engine.waitForData(f.shard as string, f.offset as number, timeoutMs as number),
      ctx.signal,
    );
  });
  handle('offsetForTimestamp', (f) => engine.offsetForTimestamp(f.shard as string, f.timestamp as number));
  handle('deleteBefore', async (f) => {
    const shard = f.shard as string;
    const fresh = admit(fence, metrics, shard, epochField(f), 'deleteBefore');
    try {
      return await engine.deleteBefore(shard, f.offset as number);
    } catch (error) {
      if (fresh && isRobustMQError(error, ErrorCode.NotFound)) fence.forget(shard);
      throw error;
    }
  });
  handle('enforceRetention', (f) => engine.enforceRetention(f.now as number));

  logger.debug({ methods: Object.values(Method) }, 'journal methods registered');
  return {
    fence: (shard, epoch) => {
      validateShardName(shard);
      fence.fence(shard, epoch);
    },
    epochOf: (shard) => fence.epochOf(shard),
  };
}

/** Checks a write's epoch against the fence; see {@link EpochFence.admit}. */
function admit(
  fence: EpochFence,
  metrics: JournalServerMetrics,
  shard: string,
  epoch: number | undefined,
  what: string,
): boolean {
  if (epoch === undefined) return false;
  // Checked first so that a garbage name never takes a place in the fence.
  validateShardName(shard);
  try {
    return fence.admit(shard, epoch, what);
  } catch (error) {
    metrics.fencedWrites.inc();
    throw error;
  }
}

/**
 * The engine's errors as the client should see them. CLOSED from the engine means this node is
 * shutting down, which for a remote caller is UNAVAILABLE (retry, perhaps elsewhere); CLOSED on
 * the client side keeps meaning that the caller closed its own client.
 */
function fromEngine(error: unknown): unknown {
  if (isRobustMQError(error, ErrorCode.Closed)) {
    return new RobustMQError(ErrorCode.Unavailable, `the journal is closing: ${error.message}`);
  }
  return error;
}

/**
 * Keeps a read reply under the frame limit: the first batch always, then whole batches while
 * their data and framing fit. The contract lets a read return fewer batches than `maxBytes` allows.
 */
function fitFrame(result: ReadResult, budget: number): ReadResult {
  let bytes = 0;
  let count = 0;
  for (const batch of result.batches) {
    bytes += batch.data.byteLength + STORED_BATCH_OVERHEAD_BYTES;
    if (count > 0 && bytes > budget) break;
    count++;
  }
  return count === result.batches.length ? result : { ...result, batches: result.batches.slice(0, count) };
}

/** Waits for `work`, or resolves undefined as soon as `signal` aborts (the caller is gone). */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
