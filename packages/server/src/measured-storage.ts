import {
  ErrorCode,
  isRobustMQError,
  type AppendOptions,
  type AppendResult,
  type ReadOptions,
  type ReadResult,
  type RecordBatch,
  type ShardConfig,
  type ShardInfo,
  type StorageEngine,
} from '@robustmq/core';
import * as prom from 'prom-client';
import { within, type NodeMetrics } from './metrics.js';

const LATENCY_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * A storage engine that measures the engine it wraps: append and read latency, appended bytes,
 * and (on each scrape) the bytes and shards it holds, all labelled with the engine's package name.
 * fsync latency is the engine's own metric (the journal's `robustmq_journal_fsync_seconds`).
 */
export function measureStorage(engine: StorageEngine, name: string, metrics: NodeMetrics): StorageEngine {
  const labels = { engine: name };
  const appendSeconds = metrics.histogram({
    name: 'robustmq_storage_append_seconds',
    help: 'Time from append to durable acknowledgement, by storage engine',
    labelNames: ['engine'],
    buckets: LATENCY_BUCKETS,
  });
  const readSeconds = metrics.histogram({
    name: 'robustmq_storage_read_seconds',
    help: 'Time one read took, by storage engine',
    labelNames: ['engine'],
    buckets: LATENCY_BUCKETS,
  });
  const appendedBytes = metrics.counter({
    name: 'robustmq_storage_appended_bytes_total',
    help: 'Record batch bytes appended, by storage engine',
    labelNames: ['engine'],
  });
  const appendErrors = metrics.counter({
    name: 'robustmq_storage_append_errors_total',
    help: 'Appends that failed, by storage engine and error code',
    labelNames: ['engine', 'code'],
  });
  let closed = false;
  const totals = async () => {
    let bytes = 0;
    const shards = await engine.listShards();
    for (const shard of shards) {
      try {
        bytes += (await engine.shardInfo(shard)).sizeBytes;
      } catch (error) {
        // A shard deleted between the listing and its info holds nothing; any other failure (a
        // journal node gone) ends the walk rather than waiting out each remaining shard.
        if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
      }
    }
    return { bytes, shards: shards.length };
  };
  let pending: Promise<{ bytes: number; shards: number }> | null = null;
  let last: { bytes: number; shards: number } | undefined;
  // Both gauges are collected together on a scrape: they share the walk in flight. A scrape waits
  // for it only so long (a journal node may be down); meanwhile it shows the last walk's totals,
  // and none once a walk has failed.
  const sample = async () => {
    if (closed) return undefined;
    pending ??= totals()
      .then(
        (result) => (last = result),
        (error: unknown) => {
          last = undefined;
          throw error;
        },
      )
      .finally(() => (pending = null));
    return (await within(pending)) ?? (pending === null ? undefined : last);
  };
  registerGauge(
    metrics,
    'robustmq_storage_bytes',
    'Bytes on disk (or in memory) held by the storage engine',
    async (gauge) => {
      const totals = await sample();
      if (totals) gauge.set(labels, totals.bytes);
      else gauge.reset();
    },
  );
  registerGauge(metrics, 'robustmq_storage_shards', 'Shards held by the storage engine', async (gauge) => {
    const totals = await sample();
    if (totals) gauge.set(labels, totals.shards);
    else gauge.reset();
  });

  return {
    ...(engine.location === undefined ? {} : { location: engine.location }),
    ...(engine.storageClass === undefined ? {} : { storageClass: engine.storageClass }),
    createShard: (shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo> =>
      engine.createShard(shard, config),
    deleteShard: (shard: string) => engine.deleteShard(shard),
    listShards: () => engine.listShards(),
    shardInfo: (shard: string) => engine.shardInfo(shard),
    updateShardConfig: (shard: string, config: Partial<ShardConfig>) =>
      engine.updateShardConfig(shard, config),
    async append(
      shard: string,
      batches: readonly RecordBatch[],
      options?: AppendOptions,
    ): Promise<AppendResult> {
      const started = process.hrtime.bigint();
      try {
        const result = await engine.append(shard, batches, options);
        appendSeconds.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
        let bytes = 0;
        for (const batch of batches) bytes += batch.data.byteLength;
        appendedBytes.inc(labels, bytes);
        return result;
      } catch (error) {
        appendErrors.inc({ ...labels, code: (error as { code?: string }).code ?? 'UNKNOWN' });
        throw error;
      }
    },
    async read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
      const started = process.hrtime.bigint();
      const result = await engine.read(shard, offset, options);
      readSeconds.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      return result;
    },
    waitForData: (shard: string, offset: number, timeoutMs: number) =>
      engine.waitForData(shard, offset, timeoutMs),
    offsetForTimestamp: (shard: string, timestamp: number) => engine.offsetForTimestamp(shard, timestamp),
    deleteBefore: (shard: string, offset: number) => engine.deleteBefore(shard, offset),
    enforceRetention: (now: number) => engine.enforceRetention(now),
    close: () => {
      closed = true;
      return engine.close();
    },
  };
}

/** A gauge whose value is computed when Prometheus scrapes. */
function registerGauge(
  metrics: NodeMetrics,
  name: string,
  help: string,
  collect: (gauge: prom.Gauge) => Promise<void>,
): void {
  if (metrics.registry.getSingleMetric(name) !== undefined) metrics.registry.removeSingleMetric(name);
  new prom.Gauge({
    name,
    help,
    labelNames: ['engine'],
    registers: [metrics.registry],
    async collect() {
      await collect(this);
    },
  });
}
