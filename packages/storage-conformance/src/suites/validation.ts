import { ErrorCode, type RecordBatch } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatches } from '../assertions.js';
import { makeBatch, makeBatches, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

const BAD_OFFSETS = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
const BAD_RECORD_COUNTS = [0, -1, 1.5, Number.NaN];

export function describeValidation(subject: Subject): void {
  describe('argument checks', () => {
    it('refuses a batch above maxBatchBytes with TOO_LARGE and appends nothing', async () => {
      const engine = subject.engine;
      await engine.createShard('s', { maxBatchBytes: 1024 });
      await expectErrorCode(engine.append('s', [makeBatch(1, 1025, Date.now())]), ErrorCode.TooLarge);
      await expectErrorCode(
        engine.append('s', [makeBatch(1, 100, Date.now()), makeBatch(1, 1025, Date.now())]),
        ErrorCode.TooLarge,
      );
      expect((await engine.shardInfo('s')).nextOffset).toBe(0);
      const fits = makeBatch(2, 1024, Date.now());
      expect(await engine.append('s', [fits])).toEqual({ baseOffset: 0, lastOffset: 1, logStartOffset: 0 });
      expectStoredBatches(await readAll(engine, 's'), withOffsets([fits]));
    });

    it.each(BAD_OFFSETS.map((offset) => [offset]))(
      'refuses offset %s with INVALID_ARGUMENT',
      async (offset) => {
        const engine = subject.engine;
        await engine.createShard('s');
        const batches = makeBatches(2, { recordCount: 3 });
        await engine.append('s', batches);
        await expectErrorCode(engine.read('s', offset, { maxBytes: 1024 }), ErrorCode.InvalidArgument);
        await expectErrorCode(engine.waitForData('s', offset, 10), ErrorCode.InvalidArgument);
        await expectErrorCode(engine.deleteBefore('s', offset), ErrorCode.InvalidArgument);
        const info = await engine.shardInfo('s');
        expect([info.logStartOffset, info.nextOffset]).toEqual([0, 6]);
        expectStoredBatches(await readAll(engine, 's'), withOffsets(batches));
      },
    );

    it.each([[null], [42], ['batch'], [[]]])(
      'refuses %j in place of a record batch with INVALID_ARGUMENT and appends nothing',
      async (notABatch) => {
        const engine = subject.engine;
        await engine.createShard('s');
        const batches = [makeBatch(1, 64, Date.now()), notABatch] as unknown as RecordBatch[];
        await expectErrorCode(engine.append('s', batches), ErrorCode.InvalidArgument);
        expect((await engine.shardInfo('s')).nextOffset).toBe(0);
        expect((await engine.read('s', 0, { maxBytes: 1024 })).batches).toEqual([]);
      },
    );

    it.each(BAD_RECORD_COUNTS.map((count) => [count]))(
      'refuses recordCount %s with INVALID_ARGUMENT and appends nothing',
      async (count) => {
        const engine = subject.engine;
        await engine.createShard('s');
        const bad: RecordBatch = { ...makeBatch(1, 64, Date.now()), recordCount: count };
        await expectErrorCode(engine.append('s', [bad]), ErrorCode.InvalidArgument);
        await expectErrorCode(
          engine.append('s', [makeBatch(1, 64, Date.now()), bad]),
          ErrorCode.InvalidArgument,
        );
        const info = await engine.shardInfo('s');
        expect(info.nextOffset).toBe(0);
        expect((await engine.read('s', 0, { maxBytes: 1024 })).batches).toEqual([]);
      },
    );
  });
}
