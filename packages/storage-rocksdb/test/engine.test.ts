import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ConfigError,
  ErrorCode,
  silentLogger,
  type RecordBatch,
  type StorageEngine,
  type StoredBatch,
} from '@robustmq/core';
import {
  expectErrorCode,
  expectStoredBatches,
  makeBatch,
  readAll,
  recordCount,
  withOffsets,
} from '@robustmq/storage-conformance';
import { describe, expect, it } from 'vitest';
import { BATCH_HEADER_BYTES } from '../src/codec.js';
import rocksdb, { RocksDbStorageEngine } from '../src/index.js';
import { batchKey } from '../src/keys.js';
import { BLOCK_MAX_BATCHES } from '../src/time-index.js';
import { recordingMetrics, seededRandom, useTempDirs } from './helpers.js';

const WRITES = 'robustmq_storage_rocksdb_writes_total';
const NO_RETENTION = { retentionMs: null, retentionBytes: null };

/** What offsetForTimestamp must answer, worked out from every batch written and the log start. */
function expectedOffset(stored: readonly StoredBatch[], logStart: number, timestamp: number): number | null {
  const hit = stored.find(
    (batch) => batch.baseOffset + batch.recordCount > logStart && batch.maxTimestamp >= timestamp,
  );
  return hit === undefined ? null : Math.max(hit.baseOffset, logStart);
}

/** Appends `count` batches of random size, record count and timestamp, ten per call. */
async function fillRandomly(
  engine: StorageEngine,
  shard: string,
  count: number,
  seed: number,
): Promise<StoredBatch[]> {
  const random = seededRandom(seed);
  const batches = Array.from({ length: count }, () =>
    makeBatch(
      1 + Math.floor(random() * 4),
      16 + Math.floor(random() * 200),
      1_000_000 + Math.floor(random() * 1e6),
    ),
  );
  for (let i = 0; i < batches.length; i += 10) await engine.append(shard, batches.slice(i, i + 10));
  return withOffsets(batches);
}

async function expectTimestampAnswers(
  engine: StorageEngine,
  shard: string,
  stored: StoredBatch[],
): Promise<void> {
  const { logStartOffset } = await engine.shardInfo(shard);
  const probes = [0, 1_000_000, 1_250_000, 1_500_000, 1_750_000, 1_999_000, 1_999_999, 2_000_001];
  for (const batch of stored.filter((_, i) => i % 37 === 0))
    probes.push(batch.maxTimestamp, batch.maxTimestamp + 1);
  for (const timestamp of probes) {
    expect(await engine.offsetForTimestamp(shard, timestamp), `timestamp ${timestamp}`).toBe(
      expectedOffset(stored, logStartOffset, timestamp),
    );
  }
}

describe('RocksDbStorageEngine', () => {
  const tempDir = useTempDirs();

  describe('default export', () => {
    const open = async (config: Record<string, unknown>) =>
      rocksdb.open({ dataDir: await tempDir(), config, logger: silentLogger, metrics: recordingMetrics() });

    it('opens an engine named rocksdb from the [storage] section', async () => {
      expect(rocksdb.name).toBe('rocksdb');
      const engine = await open({ group_commit_ms: 2, group_commit_bytes: 65_536 });
      await engine.createShard('s');
      expect(await engine.append('s', [makeBatch(3, 100, Date.now())])).toEqual({
        baseOffset: 0,
        lastOffset: 2,
        logStartOffset: 0,
      });
      await engine.close();
    });

    it.each([
      [{ bogus: 1 }, 'storage.bogus'],
      [{ segment_bytes: 1024 }, 'storage.segment_bytes'],
      [{ group_commit_ms: -1 }, 'storage.group_commit_ms'],
      [{ group_commit_ms: 1.5 }, 'storage.group_commit_ms'],
      [{ group_commit_bytes: 'big' }, 'storage.group_commit_bytes'],
      [{ group_commit_bytes: 0 }, 'storage.group_commit_bytes'],
    ])('refuses %j with a ConfigError naming %s', async (config, setting) => {
      const error: unknown = await open(config).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).setting).toBe(setting);
      expect((error as ConfigError).code).toBe(ErrorCode.Config);
    });
  });

  describe('durability policies', () => {
    it('gives concurrent group-commit appends one synced write', async () => {
      const metrics = recordingMetrics();
      const engine = await RocksDbStorageEngine.open({ dataDir: await tempDir(), metrics });
      await engine.createShard('s', { durability: 'group-commit' });
      await engine.createShard('t', { durability: 'group-commit' });
      const batches = Array.from({ length: 50 }, (_, i) => makeBatch(1 + (i % 3), 64, Date.now()));
      const results = await Promise.all(batches.map((batch, i) => engine.append(i % 2 ? 's' : 't', [batch])));
      expect(metrics.count(WRITES, { sync: 'true' })).toBe(1);
      expect(metrics.count(WRITES, { sync: 'false' })).toBe(0);
      for (const shard of ['s', 't']) {
        const mine = batches.filter((_, i) => (i % 2 ? 's' : 't') === shard);
        expect(results.filter((_, i) => (i % 2 ? 's' : 't') === shard).map((r) => r.baseOffset)).toEqual(
          withOffsets(mine).map((batch) => batch.baseOffset),
        );
        expectStoredBatches(await readAll(engine, shard), withOffsets(mine));
      }
      await engine.close();
    });

    it('syncs every fsync append and no none append', async () => {
      const metrics = recordingMetrics();
      const engine = await RocksDbStorageEngine.open({ dataDir: await tempDir(), metrics });
      await engine.createShard('synced', { durability: 'fsync' });
      await engine.createShard('unsynced', { durability: 'none' });
      for (let i = 0; i < 5; i++) await engine.append('synced', [makeBatch(1, 32, Date.now())]);
      expect(metrics.count(WRITES, { sync: 'true' })).toBe(5);
      for (let i = 0; i < 7; i++) await engine.append('unsynced', [makeBatch(1, 32, Date.now())]);
      expect(metrics.count(WRITES, { sync: 'false' })).toBe(7);
      expect(metrics.count(WRITES, { sync: 'true' })).toBe(5);
      await engine.close();
    });

    it('applies a durability change to later appends', async () => {
      const metrics = recordingMetrics();
      const engine = await RocksDbStorageEngine.open({ dataDir: await tempDir(), metrics });
      await engine.createShard('s', { durability: 'none' });
      await engine.append('s', [makeBatch(1, 32, Date.now())]);
      await engine.updateShardConfig('s', { durability: 'fsync' });
      await engine.append('s', [makeBatch(1, 32, Date.now())]);
      expect([metrics.count(WRITES, { sync: 'false' }), metrics.count(WRITES, { sync: 'true' })]).toEqual([
        1, 1,
      ]);
      await engine.close();
    });
  });

  describe('conditional appends', () => {
    it.each(['fsync', 'none', 'group-commit'] as const)(
      'refuses only those that miss their offset, per shard and over several writes (%s)',
      async (durability) => {
        const engine = await RocksDbStorageEngine.open({ dataDir: await tempDir() });
        const shards = ['s', 't'];
        for (const shard of shards) await engine.createShard(shard, { durability });
        const next = new Map(shards.map((shard) => [shard, 0]));
        const appends = Array.from({ length: 60 }, (_, i) => {
          const shard = shards[i % 2]!;
          const batch = makeBatch(1 + (i % 3), 48, Date.now());
          const at = next.get(shard)!;
          // Every fifth per shard expects an offset it will not get; of the rest, half expect theirs.
          if ((i >> 1) % 5 === 4) return { shard, batch, expectedOffset: at + 1, baseOffset: null };
          next.set(shard, at + batch.recordCount);
          return { shard, batch, expectedOffset: i % 4 < 2 ? at : undefined, baseOffset: at };
        });
        const outcomes = await Promise.allSettled(
          appends.map(({ shard, batch, expectedOffset }) =>
            engine.append(shard, [batch], expectedOffset === undefined ? undefined : { expectedOffset }),
          ),
        );
        outcomes.forEach((outcome, i) => {
          const { baseOffset } = appends[i]!;
          if (baseOffset === null) {
            expect(outcome, `append ${i}`).toMatchObject({
              status: 'rejected',
              reason: { code: ErrorCode.Conflict },
            });
          } else {
            expect(outcome, `append ${i}`).toMatchObject({ status: 'fulfilled', value: { baseOffset } });
          }
        });
        for (const shard of shards) {
          const stored = appends.filter((append) => append.shard === shard && append.baseOffset !== null);
          expectStoredBatches(
            await readAll(engine, shard),
            stored.map(({ batch, baseOffset }) => ({ ...batch, baseOffset: baseOffset! })),
          );
        }
        await engine.close();
      },
    );

    it('writes nothing when every append of a write is refused', async () => {
      const metrics = recordingMetrics();
      const engine = await RocksDbStorageEngine.open({ dataDir: await tempDir(), metrics });
      await engine.createShard('s');
      await engine.append('s', [makeBatch(2, 32, Date.now())]);
      const writes = metrics.count(WRITES, { sync: 'true' });
      const outcomes = await Promise.allSettled(
        [0, 1, 3].map((expectedOffset) =>
          engine.append('s', [makeBatch(1, 32, Date.now())], { expectedOffset }),
        ),
      );
      for (const outcome of outcomes) {
        expect(outcome).toMatchObject({ status: 'rejected', reason: { code: ErrorCode.Conflict } });
      }
      expect(metrics.count(WRITES, { sync: 'true' })).toBe(writes);
      expect((await engine.shardInfo('s')).nextOffset).toBe(2);
      await engine.close();
    });
  });

  describe('time index', () => {
    it('answers offsetForTimestamp over many blocks, before and after deleteBefore and reopen', async () => {
      const dir = await tempDir();
      let engine: StorageEngine = await RocksDbStorageEngine.open({ dataDir: dir });
      await engine.createShard('s', NO_RETENTION);
      const stored = await fillRandomly(engine, 's', BLOCK_MAX_BATCHES * 4 + 17, 7);
      await expectTimestampAnswers(engine, 's', stored);

      // Inside a batch in the middle of the second block.
      const middle = stored[BLOCK_MAX_BATCHES + 100]!;
      await engine.deleteBefore('s', middle.baseOffset + middle.recordCount - 1);
      await expectTimestampAnswers(engine, 's', stored);
      const before = await engine.shardInfo('s');

      await engine.close();
      engine = await RocksDbStorageEngine.open({ dataDir: dir });
      expect(await engine.shardInfo('s')).toEqual(before);
      await expectTimestampAnswers(engine, 's', stored);
      expectStoredBatches(await readAll(engine, 's'), stored.slice(BLOCK_MAX_BATCHES + 100));
      await engine.close();
    });
  });

  describe('retention over many blocks', () => {
    it('drops by size while the newest retentionBytes stay', async () => {
      const engine = await RocksDbStorageEngine.open({ dataDir: await tempDir() });
      await engine.createShard('s', NO_RETENTION);
      const stored = await fillRandomly(engine, 's', BLOCK_MAX_BATCHES * 3, 11);
      const full = (await engine.shardInfo('s')).sizeBytes;
      const limit = Math.floor(full / 3);
      await engine.updateShardConfig('s', { retentionBytes: limit });
      await engine.enforceRetention(Date.now());
      const info = await engine.shardInfo('s');
      expect(info.sizeBytes).toBeGreaterThanOrEqual(limit);
      const first = stored.findIndex((batch) => batch.baseOffset === info.logStartOffset);
      expect(first).toBeGreaterThan(0);
      expectStoredBatches(await readAll(engine, 's'), stored.slice(first));
      // Dropping the oldest kept batch too would have left less than the limit: nothing more could go.
      const oldest = stored[first]!;
      const oldestBytes = batchKey(0, 0).length + BATCH_HEADER_BYTES + oldest.data.length;
      expect(info.sizeBytes - oldestBytes).toBeLessThan(limit);
      await engine.close();
    });

    it('drops by time up to the first batch that is recent enough', async () => {
      const engine = await RocksDbStorageEngine.open({ dataDir: await tempDir() });
      await engine.createShard('s', NO_RETENTION);
      const t0 = 1_700_000_000_000;
      const batches = Array.from({ length: BLOCK_MAX_BATCHES * 3 }, (_, i) => makeBatch(2, 40, t0 + i * 10));
      for (let i = 0; i < batches.length; i += 16) await engine.append('s', batches.slice(i, i + 16));
      await engine.updateShardConfig('s', { retentionMs: 1000 });
      // Batches with a timestamp before t0 + 5000 are older than 1000 ms at t0 + 6000.
      await engine.enforceRetention(t0 + 6000);
      const info = await engine.shardInfo('s');
      expect(info.logStartOffset).toBe(500 * 2);
      expect(info.nextOffset).toBe(recordCount(batches));
      expectStoredBatches(await readAll(engine, 's'), withOffsets(batches).slice(500));
      await engine.close();
    });
  });

  it('says why the database cannot be opened, not only that it is not open', async () => {
    const dir = await tempDir();
    const engine = await RocksDbStorageEngine.open({ dataDir: dir });
    await expect(RocksDbStorageEngine.open({ dataDir: dir })).rejects.toThrow(/LOCK: No locks available/);
    await engine.close();
    await writeFile(join(dir, 'rocksdb', 'CURRENT'), 'damaged');
    await expect(RocksDbStorageEngine.open({ dataDir: dir })).rejects.toMatchObject({
      code: ErrorCode.Unavailable,
      message: expect.stringMatching(/^cannot open rocksdb at .*: Corruption: CURRENT file/),
    });
  });

  it('refuses batches that are not record batches with INVALID_ARGUMENT and appends nothing', async () => {
    const engine = await RocksDbStorageEngine.open({ dataDir: await tempDir() });
    await engine.createShard('s');
    for (const bad of [null, undefined, 7, 'batch']) {
      await expectErrorCode(
        engine.append('s', [makeBatch(1, 16, 1), bad as unknown as RecordBatch]),
        ErrorCode.InvalidArgument,
      );
    }
    expect((await engine.shardInfo('s')).nextOffset).toBe(0);
    await engine.close();
  });

  it('refuses a second open of the same directory with UNAVAILABLE', async () => {
    const dir = await tempDir();
    const engine = await RocksDbStorageEngine.open({ dataDir: dir });
    await expectErrorCode(RocksDbStorageEngine.open({ dataDir: dir }), ErrorCode.Unavailable);
    await engine.createShard('s');
    await engine.close();
  });
});
