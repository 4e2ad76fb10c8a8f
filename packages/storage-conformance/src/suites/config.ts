import { DEFAULT_SHARD_CONFIG, ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatches } from '../assertions.js';
import { makeBatch, makeBatches, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

export function describeShardConfig(subject: Subject): void {
  describe('updateShardConfig', () => {
    it('changes the given settings, keeps the others and keeps the data', async () => {
      const engine = subject.engine;
      await engine.createShard('s', { segmentBytes: 4096 });
      const batches = makeBatches(3, { recordCount: 2 });
      await engine.append('s', batches);
      const info = await engine.updateShardConfig('s', {
        maxBatchBytes: 2048,
        retentionMs: null,
        segmentMs: null,
        durability: 'none',
      });
      const expected = {
        ...DEFAULT_SHARD_CONFIG,
        segmentBytes: 4096,
        maxBatchBytes: 2048,
        retentionMs: null,
        segmentMs: null,
        durability: 'none',
      };
      expect(info.config).toEqual(expected);
      expect(info.nextOffset).toBe(6);
      expect((await engine.shardInfo('s')).config).toEqual(expected);
      expectStoredBatches(await readAll(engine, 's'), withOffsets(batches));
    });

    it('applies a new maxBatchBytes to later appends', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await engine.append('s', [makeBatch(1, 4096, Date.now())]);
      await engine.updateShardConfig('s', { maxBatchBytes: 2048 });
      await expectErrorCode(engine.append('s', [makeBatch(1, 2049, Date.now())]), ErrorCode.TooLarge);
      expect(await engine.append('s', [makeBatch(1, 2048, Date.now())])).toEqual({
        baseOffset: 1,
        lastOffset: 1,
        logStartOffset: 0,
      });
    });
  });
}
