import { DEFAULT_SHARD_CONFIG, ErrorCode, silentLogger, type Metrics } from '@robustmq/core';
import {
  expectErrorCode,
  expectStoredBatch,
  expectStoredBatches,
  makeBatch,
  makeBatches,
  readAll,
  settlesWithin,
  withOffsets,
} from '@robustmq/storage-conformance';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import memoryDefinition, { MemoryStorageEngine } from '../src/index.js';

const T0 = 1_700_000_000_000;

const noMetrics: Metrics = {
  counter: () => ({ inc: () => {} }),
  gauge: () => ({ set: () => {}, inc: () => {}, dec: () => {} }),
  histogram: () => ({ observe: () => {} }),
};

let engine: MemoryStorageEngine;
beforeEach(() => {
  engine = new MemoryStorageEngine();
});
afterEach(() => engine.close());

describe('memory engine definition', () => {
  it('is named memory and opens a working engine without touching dataDir', async () => {
    expect(memoryDefinition.name).toBe('memory');
    const opened = await memoryDefinition.open({
      dataDir: '/nonexistent/robustmq-memory',
      config: {},
      logger: silentLogger,
      metrics: noMetrics,
    });
    await opened.createShard('s');
    expect(await opened.append('s', makeBatches(1, { recordCount: 2 }))).toEqual({
      baseOffset: 0,
      lastOffset: 1,
      logStartOffset: 0,
    });
    await opened.close();
  });
});

describe('memory engine', () => {
  it('keeps nothing across engines', async () => {
    await engine.createShard('s');
    const other = new MemoryStorageEngine();
    expect(await other.listShards()).toEqual([]);
    await other.close();
  });

  it('refuses an append of no batches and bad read and wait arguments', async () => {
    await engine.createShard('s');
    await expectErrorCode(engine.append('s', []), ErrorCode.InvalidArgument);
    await expectErrorCode(engine.read('s', 0, { maxBytes: -1 }), ErrorCode.InvalidArgument);
    await expectErrorCode(engine.read('s', 0, { maxBytes: Number.NaN }), ErrorCode.InvalidArgument);
    await expectErrorCode(engine.waitForData('s', 0, -5), ErrorCode.InvalidArgument);
    await expectErrorCode(
      engine.append('s', [{ ...makeBatch(1, 8, 0), maxTimestamp: Number.NaN }]),
      ErrorCode.InvalidArgument,
    );
    await expectErrorCode(engine.enforceRetention(Number.NaN), ErrorCode.InvalidArgument);
    expect((await engine.shardInfo('s')).nextOffset).toBe(0);
  });

  it('counts the shard size as the bytes of its batches', async () => {
    await engine.createShard('s');
    await engine.append('s', makeBatches(4, { bytes: 100 }));
    expect((await engine.shardInfo('s')).sizeBytes).toBe(400);
    await engine.deleteBefore('s', 2);
    expect((await engine.shardInfo('s')).sizeBytes).toBe(200);
  });

  it('drops exactly the expired batches by time', async () => {
    await engine.createShard('s', { retentionMs: 1000 });
    await engine.append(
      's',
      makeBatches(40, { recordCount: 2, bytes: 200, firstTimestamp: T0, timestampStep: 100 }),
    );
    await engine.enforceRetention(T0 + 3050);
    // Batches up to T0 + 2000 (the 21st, ending at offset 41) are older than 1000 ms.
    expect((await engine.shardInfo('s')).logStartOffset).toBe(42);
    expect((await engine.shardInfo('s')).sizeBytes).toBe(19 * 200);
  });

  it('drops the oldest batches while the newest retentionBytes stay', async () => {
    await engine.createShard('s', { retentionMs: null, retentionBytes: 1000 });
    await engine.append('s', makeBatches(10, { bytes: 300 }));
    await engine.enforceRetention(Date.now());
    const info = await engine.shardInfo('s');
    // Three batches (900 bytes) would be under the limit: four stay.
    expect(info.sizeBytes).toBe(1200);
    expect(info.logStartOffset).toBe(6);
  });

  it('releases pending waits when their shard is deleted or the engine closes', async () => {
    await engine.createShard('a');
    await engine.createShard('b');
    const onA = engine.waitForData('a', 0, 120_000);
    const onB = engine.waitForData('b', 0, Number.POSITIVE_INFINITY);
    await engine.deleteShard('a');
    expect(await settlesWithin(onA, 5000)).toBe('resolved');
    expect(await settlesWithin(onB, 20)).toBe('pending');
    await engine.close();
    expect(await settlesWithin(onB, 5000)).toBe('resolved');
  });

  it('waits without a timer for an infinite timeout until data arrives', async () => {
    await engine.createShard('s');
    const waiting = engine.waitForData('s', 0, Number.POSITIVE_INFINITY);
    expect(await settlesWithin(waiting, 20)).toBe('pending');
    await engine.append('s', makeBatches(1));
    expect(await settlesWithin(waiting, 5000)).toBe('resolved');
  });

  it('stores a copy of a Buffer and serves plain bytes', async () => {
    await engine.createShard('s');
    const buffer = Buffer.from('hello, robustmq');
    await engine.append('s', [{ recordCount: 1, maxTimestamp: 1, data: buffer }]);
    buffer.write('HELLO');
    const [stored] = (await engine.read('s', 0, { maxBytes: 1024 })).batches;
    expect(Buffer.from(stored!.data).toString()).toBe('hello, robustmq');
  });

  it('keeps the config it was given apart from the one it reports', async () => {
    const info = await engine.createShard('s');
    info.config.maxBatchBytes = 1;
    expect((await engine.shardInfo('s')).config).toEqual({ ...DEFAULT_SHARD_CONFIG });
  });
});

describe('memory engine at scale', () => {
  it('finds the right batch among many, before and after dropping most of them', async () => {
    await engine.createShard('s', { retentionMs: null });
    const count = 20_000;
    // Record counts 1..3 and timestamps that go up in steps, with some going backwards.
    const batches = makeBatches(count, {
      recordCount: (i) => 1 + (i % 3),
      bytes: 8,
      firstTimestamp: T0,
      timestampStep: 10,
    }).map((batch, i) => (i % 7 === 3 ? { ...batch, maxTimestamp: batch.maxTimestamp - 25 } : batch));
    for (let i = 0; i < count; i += 500) await engine.append('s', batches.slice(i, i + 500));
    const stored = withOffsets(batches);
    const probe = async (from: number) => {
      for (let i = from; i < count; i += 997) {
        const batch = stored[i]!;
        const inside = batch.baseOffset + batch.recordCount - 1;
        expectStoredBatch(
          (await engine.read('s', inside, { maxBytes: 1 })).batches[0],
          batch,
          batch.baseOffset,
        );
        // The first batch whose max timestamp reaches this one's: itself or, when it went back, later.
        const expected = stored.slice(from).find((b) => b.maxTimestamp >= batch.maxTimestamp)!;
        expect(await engine.offsetForTimestamp('s', batch.maxTimestamp)).toBe(expected.baseOffset);
      }
    };
    await probe(0);
    // Drop 3/4 of the batches in steps, so the engine compacts its array along the way.
    const cut = Math.floor((count * 3) / 4);
    for (let i = 1000; i <= cut; i += 1000) await engine.deleteBefore('s', stored[i]!.baseOffset);
    await probe(cut);
    expectStoredBatches(await readAll(engine, 's', { maxBytes: 64 * 1024 }), stored.slice(cut));
  });
});
