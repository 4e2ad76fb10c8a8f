import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatch, expectStoredBatches } from '../assertions.js';
import { makeBatch, makeBatches, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

const AMPLE = { maxBytes: 64 * 1024 * 1024 };

export function describeDeleteBefore(subject: Subject): void {
  describe('deleteBefore', () => {
    it('moves the log start to the given offset, even inside a batch', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batches = makeBatches(4, { recordCount: 5 });
      await engine.append('s', batches);
      const stored = withOffsets(batches);
      expect(await engine.deleteBefore('s', 7)).toBe(7);
      const info = await engine.shardInfo('s');
      expect(info.logStartOffset).toBe(7);
      expect(info.nextOffset).toBe(20);
      const read = await engine.read('s', 7, AMPLE);
      expect(read.logStartOffset).toBe(7);
      expectStoredBatches(read.batches, stored.slice(1));
      await expectErrorCode(engine.read('s', 6, AMPLE), ErrorCode.OffsetOutOfRange);
      await expectErrorCode(engine.read('s', 0, AMPLE), ErrorCode.OffsetOutOfRange);
      expectStoredBatches(await readAll(engine, 's'), stored.slice(1));
    });

    it('moves the log start to a batch boundary', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batches = makeBatches(4, { recordCount: 5 });
      await engine.append('s', batches);
      expect(await engine.deleteBefore('s', 10)).toBe(10);
      await expectErrorCode(engine.read('s', 9, AMPLE), ErrorCode.OffsetOutOfRange);
      expectStoredBatches((await engine.read('s', 10, AMPLE)).batches, withOffsets(batches).slice(2));
    });

    it('never moves the log start backwards', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await engine.append('s', makeBatches(4, { recordCount: 5 }));
      expect(await engine.deleteBefore('s', 10)).toBe(10);
      expect(await engine.deleteBefore('s', 3)).toBe(10);
      expect(await engine.deleteBefore('s', 10)).toBe(10);
      expect((await engine.shardInfo('s')).logStartOffset).toBe(10);
      await expectErrorCode(engine.read('s', 3, AMPLE), ErrorCode.OffsetOutOfRange);
    });

    it('deletes everything at the next offset and keeps numbering from there', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await engine.append('s', makeBatches(4, { recordCount: 5 }));
      expect(await engine.deleteBefore('s', 20)).toBe(20);
      expect(await engine.read('s', 20, AMPLE)).toEqual({ batches: [], logStartOffset: 20, nextOffset: 20 });
      await expectErrorCode(engine.read('s', 19, AMPLE), ErrorCode.OffsetOutOfRange);
      const next = makeBatch(2, 64, Date.now());
      expect(await engine.append('s', [next])).toEqual({
        baseOffset: 20,
        lastOffset: 21,
        logStartOffset: 20,
      });
      expectStoredBatch((await engine.read('s', 20, AMPLE)).batches[0], next, 20);
      const info = await engine.shardInfo('s');
      expect([info.logStartOffset, info.nextOffset]).toEqual([20, 22]);
    });

    it('refuses an offset beyond the next offset with OFFSET_OUT_OF_RANGE and changes nothing', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batches = makeBatches(2, { recordCount: 5 });
      await engine.append('s', batches);
      await expectErrorCode(engine.deleteBefore('s', 11), ErrorCode.OffsetOutOfRange);
      expect((await engine.shardInfo('s')).logStartOffset).toBe(0);
      expectStoredBatches(await readAll(engine, 's'), withOffsets(batches));
    });
  });
}
