import { DEFAULT_SHARD_CONFIG, ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatches } from '../assertions.js';
import { makeBatch, makeBatches, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

const T0 = 1_700_000_000_000;

/** Only for persistent engines: what must survive `close()` then `open(dir)`. */
export function describePersistence(subject: Subject): void {
  describe('reopen', () => {
    it('keeps shards, configs, data and offsets', async () => {
      let engine = subject.engine;
      const configs = {
        'orders/0': { retentionMs: null, segmentBytes: 1024, durability: 'fsync' },
        'orders/1': { retentionBytes: 1 << 20, maxBatchBytes: 4096, segmentMs: 3_600_000 },
        nested: {},
      } as const;
      const written = new Map<string, ReturnType<typeof withOffsets>>();
      for (const [shard, config] of Object.entries(configs)) {
        await engine.createShard(shard, config);
        const batches = makeBatches(12, {
          recordCount: (i) => 1 + (i % 3),
          bytes: 300,
          firstTimestamp: Date.now(),
        });
        for (const batch of batches) await engine.append(shard, [batch]);
        written.set(shard, withOffsets(batches));
      }
      await engine.createShard('nested/child');

      engine = await subject.reopen();
      expect([...(await engine.listShards())].sort()).toEqual([
        'nested',
        'nested/child',
        'orders/0',
        'orders/1',
      ]);
      for (const [shard, config] of Object.entries(configs)) {
        const stored = written.get(shard)!;
        const info = await engine.shardInfo(shard);
        expect(info.config).toEqual({ ...DEFAULT_SHARD_CONFIG, ...config });
        expect(info.logStartOffset).toBe(0);
        expect(info.nextOffset).toBe(stored.at(-1)!.baseOffset + stored.at(-1)!.recordCount);
        expectStoredBatches(await readAll(engine, shard), stored);
        expect(await engine.offsetForTimestamp(shard, 0)).toBe(0);
        const next = makeBatch(2, 64, Date.now());
        expect(await engine.append(shard, [next])).toEqual({
          baseOffset: info.nextOffset,
          lastOffset: info.nextOffset + 1,
          logStartOffset: 0,
        });
      }
      expect((await engine.shardInfo('nested/child')).nextOffset).toBe(0);
    });

    it('keeps the log start after deleteBefore', async () => {
      let engine = subject.engine;
      await engine.createShard('s', { segmentBytes: 1024 });
      const batches = makeBatches(20, { recordCount: 5, bytes: 200 });
      await engine.append('s', batches);
      expect(await engine.deleteBefore('s', 37)).toBe(37);
      engine = await subject.reopen();
      const info = await engine.shardInfo('s');
      expect([info.logStartOffset, info.nextOffset]).toEqual([37, 100]);
      await expectErrorCode(engine.read('s', 36, { maxBytes: 1024 }), ErrorCode.OffsetOutOfRange);
      expectStoredBatches(await readAll(engine, 's'), withOffsets(batches).slice(7));
      expect((await engine.append('s', makeBatches(1))).logStartOffset).toBe(37);
    });

    it('keeps config updates, deletions and retention results', async () => {
      let engine = subject.engine;
      await engine.createShard('gone');
      await engine.createShard('timed', { segmentBytes: 1024, retentionMs: null });
      const batches = withOffsets(
        makeBatches(40, { recordCount: 2, bytes: 200, firstTimestamp: T0, timestampStep: 100 }),
      );
      for (const { recordCount, maxTimestamp, data } of batches) {
        await engine.append('timed', [{ recordCount, maxTimestamp, data }]);
      }
      await engine.updateShardConfig('timed', { retentionMs: 1000, maxBatchBytes: 4096, segmentMs: null });
      await engine.deleteShard('gone');
      await engine.enforceRetention(T0 + 3050);
      const trimmed = await engine.shardInfo('timed');
      expect(trimmed.logStartOffset).toBeGreaterThan(0);

      engine = await subject.reopen();
      expect(await engine.listShards()).toEqual(['timed']);
      const info = await engine.shardInfo('timed');
      expect(info.config).toEqual({
        ...DEFAULT_SHARD_CONFIG,
        segmentBytes: 1024,
        retentionMs: 1000,
        maxBatchBytes: 4096,
        segmentMs: null,
      });
      expect(info.logStartOffset).toBe(trimmed.logStartOffset);
      expect(info.nextOffset).toBe(80);
      const first = batches.findIndex((batch) => batch.baseOffset === info.logStartOffset);
      expectStoredBatches(await readAll(engine, 'timed'), batches.slice(first));
    });

    it('survives several close and open cycles with appends in between', async () => {
      let engine = subject.engine;
      await engine.createShard('s');
      const all = [];
      for (let cycle = 0; cycle < 3; cycle++) {
        const batches = makeBatches(5, { recordCount: 2, bytes: 100 });
        for (const batch of batches) await engine.append('s', [batch]);
        all.push(...batches);
        engine = await subject.reopen();
        expectStoredBatches(await readAll(engine, 's'), withOffsets(all));
      }
      expect((await engine.shardInfo('s')).nextOffset).toBe(30);
    });
  });
}
