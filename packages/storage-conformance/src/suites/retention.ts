import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  type ShardConfig,
  type StorageEngine,
  type StoredBatch,
} from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatches } from '../assertions.js';
import { makeBatches, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

/** A fixed clock for record timestamps and `enforceRetention(now)`. */
const T0 = 1_700_000_000_000;

// Small segments so segment-based engines have whole segments to drop; engines without segments
// drop whole batches. The assertions hold for either granularity.
const BY_TIME: Partial<ShardConfig> = { segmentBytes: 1024, retentionMs: 1000, retentionBytes: null };
const BY_SIZE: Partial<ShardConfig> = { segmentBytes: 2048, retentionMs: null, retentionBytes: 16_384 };
const OFF: Partial<ShardConfig> = { segmentBytes: 1024, retentionMs: null, retentionBytes: null };

/** 40 batches of 200 bytes and 2 records, 100 ms apart from T0. */
function timedBatches(): StoredBatch[] {
  return withOffsets(makeBatches(40, { recordCount: 2, bytes: 200, firstTimestamp: T0, timestampStep: 100 }));
}

/** 80 batches of 500 bytes and 1 record. */
function sizedBatches(): StoredBatch[] {
  return withOffsets(makeBatches(80, { bytes: 500, firstTimestamp: T0, timestampStep: 1 }));
}

async function fill(
  engine: StorageEngine,
  shard: string,
  config: Partial<ShardConfig>,
  batches: StoredBatch[],
) {
  await engine.createShard(shard, config);
  // One append per batch, as producers do, so segment engines roll segments along the way.
  for (const { recordCount, maxTimestamp, data } of batches) {
    await engine.append(shard, [{ recordCount, maxTimestamp, data }]);
  }
}

/**
 * Asserts what retention may do to a shard written with `stored`: the log start moved forward to a
 * batch boundary no later than `latestStart`, every batch from there on is intact, the next offset
 * is unchanged, and reads below the start are refused. Returns the new log start.
 */
async function expectTrimmed(
  engine: StorageEngine,
  shard: string,
  stored: StoredBatch[],
  latestStart: number,
): Promise<number> {
  const info = await engine.shardInfo(shard);
  const start = info.logStartOffset;
  expect(start, 'log start moved forward').toBeGreaterThan(0);
  expect(start, 'log start not past the first batch that must stay').toBeLessThanOrEqual(latestStart);
  const first = stored.findIndex((batch) => batch.baseOffset === start);
  expect(first, 'log start is a batch boundary').toBeGreaterThan(0);
  expect(info.nextOffset).toBe(stored.at(-1)!.baseOffset + stored.at(-1)!.recordCount);
  expectStoredBatches(await readAll(engine, shard), stored.slice(first));
  await expectErrorCode(engine.read(shard, start - 1, { maxBytes: 1024 }), ErrorCode.OffsetOutOfRange);
  return start;
}

async function expectUntouched(engine: StorageEngine, shard: string, stored: StoredBatch[]): Promise<void> {
  expect((await engine.shardInfo(shard)).logStartOffset).toBe(0);
  expectStoredBatches(await readAll(engine, shard), stored);
}

export function describeRetention(subject: Subject): void {
  describe('retention', () => {
    it('drops old data by time and keeps the rest', async () => {
      const engine = subject.engine;
      const stored = timedBatches();
      await fill(engine, 's', BY_TIME, stored);
      const sizeBefore = (await engine.shardInfo('s')).sizeBytes;

      // Nothing is older than 1000 ms yet.
      await engine.enforceRetention(T0 + 950);
      await expectUntouched(engine, 's', stored);

      // Batches 0..20 (up to T0 + 2000) are now older than 1000 ms; batch 21 at offset 42 is not.
      await engine.enforceRetention(T0 + 3050);
      const start = await expectTrimmed(engine, 's', stored, 42);
      expect((await engine.shardInfo('s')).sizeBytes).toBeLessThan(sizeBefore);
      expect(await engine.offsetForTimestamp('s', 0)).toBe(start);
    });

    it('drops the oldest data by size and keeps the newest retentionBytes', async () => {
      const engine = subject.engine;
      const stored = sizedBatches();
      await fill(engine, 's', BY_SIZE, stored);
      await engine.enforceRetention(T0 + 1_000_000_000);
      await expectTrimmed(engine, 's', stored, stored.at(-1)!.baseOffset);
      // As Kafka's retention.bytes: old data goes only while the newest retentionBytes stay, and
      // whatever the granularity (a segment or a batch), not much more than that stays.
      const { sizeBytes } = await engine.shardInfo('s');
      expect(sizeBytes).toBeGreaterThanOrEqual(16_384);
      expect(sizeBytes).toBeLessThanOrEqual(16_384 + 2 * 2048);
    });

    it('keeps everything when retention is off, and recent data under the default config', async () => {
      const engine = subject.engine;
      const old = timedBatches();
      await fill(engine, 'off', OFF, old);
      const recent = withOffsets(makeBatches(10, { bytes: 200 }));
      await fill(engine, 'default', {}, recent);
      await engine.enforceRetention(Date.now());
      await expectUntouched(engine, 'off', old);
      await expectUntouched(engine, 'default', recent);
    });

    it('applies retention to every shard by its own config', async () => {
      const engine = subject.engine;
      const timed = timedBatches();
      const sized = sizedBatches();
      const kept = timedBatches();
      await fill(engine, 'timed', BY_TIME, timed);
      await fill(engine, 'sized', BY_SIZE, sized);
      await fill(engine, 'kept', OFF, kept);
      await engine.enforceRetention(T0 + 3050);
      await expectTrimmed(engine, 'timed', timed, 42);
      await expectTrimmed(engine, 'sized', sized, sized.at(-1)!.baseOffset);
      await expectUntouched(engine, 'kept', kept);
    });

    it('follows config updates', async () => {
      const engine = subject.engine;
      const stored = timedBatches();
      await fill(engine, 's', OFF, stored);
      await engine.enforceRetention(T0 + 3050);
      await expectUntouched(engine, 's', stored);
      const info = await engine.updateShardConfig('s', { retentionMs: 1000 });
      expect(info.config).toEqual({ ...DEFAULT_SHARD_CONFIG, ...OFF, retentionMs: 1000 });
      await engine.enforceRetention(T0 + 3050);
      await expectTrimmed(engine, 's', stored, 42);
    });

    it('keeps numbering after retention', async () => {
      const engine = subject.engine;
      const stored = timedBatches();
      await fill(engine, 's', BY_TIME, stored);
      await engine.enforceRetention(T0 + 1_000_000_000);
      const info = await engine.shardInfo('s');
      expect(info.nextOffset).toBe(80);
      expect(info.logStartOffset).toBeGreaterThan(0);
      expect(info.logStartOffset).toBeLessThanOrEqual(80);
      const next = makeBatches(1, { recordCount: 3, firstTimestamp: T0 + 1_000_000_000 });
      expect(await engine.append('s', next)).toEqual({
        baseOffset: 80,
        lastOffset: 82,
        logStartOffset: info.logStartOffset,
      });
      expectStoredBatches((await engine.read('s', 80, { maxBytes: 1024 })).batches, withOffsets(next, 80));
    });
  });
}
