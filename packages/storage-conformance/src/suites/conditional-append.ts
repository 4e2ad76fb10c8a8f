import {
  ErrorCode,
  isRobustMQError,
  type AppendResult,
  type RecordBatch,
  type StoredBatch,
} from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatches } from '../assertions.js';
import { makeBatch, makeBatches, recordCount, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

const BAD_EXPECTED_OFFSETS = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY];

/** Where each appended batch must be once `appends` (in call order) took their offsets from 0. */
function storedFrom(appends: readonly RecordBatch[][]): StoredBatch[] {
  return withOffsets(appends.flat());
}

export function describeConditionalAppend(subject: Subject): void {
  describe('conditional appends (expectedOffset)', () => {
    it('stores an append whose expected offset is the next offset, at that offset', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const first = makeBatches(2, { recordCount: 3 });
      expect(await engine.append('s', first, { expectedOffset: 0 })).toEqual({
        baseOffset: 0,
        lastOffset: 5,
        logStartOffset: 0,
      });
      const second = [makeBatch(2, 64, Date.now())];
      expect(await engine.append('s', second, { expectedOffset: 6 })).toEqual({
        baseOffset: 6,
        lastOffset: 7,
        logStartOffset: 0,
      });
      expect((await engine.shardInfo('s')).nextOffset).toBe(8);
      expectStoredBatches(await readAll(engine, 's'), storedFrom([first, second]));
    });

    it('appends as before when no expected offset is given', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const first = makeBatches(1, { recordCount: 2 });
      const second = makeBatches(1);
      expect((await engine.append('s', first, {})).baseOffset).toBe(0);
      expect((await engine.append('s', second, { expectedOffset: undefined })).baseOffset).toBe(2);
      expectStoredBatches(await readAll(engine, 's'), storedFrom([first, second]));
    });

    it('refuses a stale or a future expected offset with CONFLICT and stores nothing', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const kept = makeBatches(1, { recordCount: 3 });
      await engine.append('s', kept);
      for (const expectedOffset of [0, 2, 4, 1000]) {
        await expectErrorCode(engine.append('s', makeBatches(2), { expectedOffset }), ErrorCode.Conflict);
      }
      const info = await engine.shardInfo('s');
      expect([info.logStartOffset, info.nextOffset]).toEqual([0, 3]);
      expectStoredBatches(await readAll(engine, 's'), storedFrom([kept]));
      const next = makeBatches(1);
      expect((await engine.append('s', next, { expectedOffset: 3 })).baseOffset).toBe(3);
      expectStoredBatches(await readAll(engine, 's'), storedFrom([kept, next]));
    });

    it('counts appends called before it that have not settled yet', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const first = makeBatches(2, { recordCount: 2 });
      const second = makeBatches(1, { recordCount: 3 });
      // Neither awaited before the next call: the second expects where the first will end.
      const appending = engine.append('s', first);
      const expecting = engine.append('s', second, { expectedOffset: 4 });
      expect((await appending).baseOffset).toBe(0);
      expect(await expecting).toEqual({ baseOffset: 4, lastOffset: 6, logStartOffset: 0 });
      expectStoredBatches(await readAll(engine, 's'), storedFrom([first, second]));
    });

    it('lets a chain of unsettled appends each expect where the one before ends', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const appends = Array.from({ length: 20 }, (_, i) => makeBatches(1 + (i % 3), { recordCount: 2 }));
      let expectedOffset = 0;
      const pending = appends.map((batches) => {
        const result = engine.append('s', batches, { expectedOffset });
        expectedOffset += recordCount(batches);
        return result;
      });
      const results = await Promise.all(pending);
      let next = 0;
      results.forEach((result, i) => {
        expect(result.baseOffset, `append ${i}`).toBe(next);
        next += recordCount(appends[i]!);
      });
      expectStoredBatches(await readAll(engine, 's'), storedFrom(appends));
    });

    it('stores exactly one of two appends called together that expect the same offset', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const before = makeBatches(1, { recordCount: 2 });
      await engine.append('s', before);
      const contenders = [makeBatches(1, { recordCount: 3 }), makeBatches(2)];
      const outcomes = await Promise.allSettled(
        contenders.map((batches) => engine.append('s', batches, { expectedOffset: 2 })),
      );
      const stored = outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [i] : []));
      expect(stored, 'appends that stored').toHaveLength(1);
      const winner = stored[0]!;
      const loser = outcomes[1 - winner]!;
      expect(loser.status).toBe('rejected');
      if (loser.status === 'rejected') {
        expect(isRobustMQError(loser.reason, ErrorCode.Conflict), String(loser.reason)).toBe(true);
      }
      const won = (outcomes[winner] as PromiseFulfilledResult<AppendResult>).value;
      expect(won.baseOffset).toBe(2);
      const winning = contenders[winner]!;
      expect((await engine.shardInfo('s')).nextOffset).toBe(2 + recordCount(winning));
      expectStoredBatches(await readAll(engine, 's'), storedFrom([before, winning]));
    });

    it('fails only the conflicting append among several called together', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const a = makeBatches(1, { recordCount: 2 });
      const b = makeBatches(1);
      const conflicting = makeBatches(1, { recordCount: 4 });
      const d = makeBatches(2);
      const e = makeBatches(1, { recordCount: 3 });
      const calls = [
        engine.append('s', a),
        engine.append('s', b, { expectedOffset: 2 }),
        engine.append('s', conflicting, { expectedOffset: 0 }),
        // The conflicting append took no offsets: this one follows b.
        engine.append('s', d, { expectedOffset: 3 }),
        engine.append('s', e),
      ];
      const outcomes = await Promise.allSettled(calls);
      const failed = outcomes[2]!;
      expect(failed.status).toBe('rejected');
      if (failed.status === 'rejected') {
        expect(isRobustMQError(failed.reason, ErrorCode.Conflict), String(failed.reason)).toBe(true);
      }
      const bases = outcomes.map((outcome) =>
        outcome.status === 'fulfilled' ? outcome.value.baseOffset : null,
      );
      expect(bases).toEqual([0, 2, null, 3, 5]);
      expect((await engine.shardInfo('s')).nextOffset).toBe(8);
      expectStoredBatches(await readAll(engine, 's'), storedFrom([a, b, d, e]));
    });

    it.each(BAD_EXPECTED_OFFSETS.map((offset) => [offset]))(
      'refuses expected offset %s with INVALID_ARGUMENT and stores nothing',
      async (expectedOffset) => {
        const engine = subject.engine;
        await engine.createShard('s');
        await expectErrorCode(
          engine.append('s', makeBatches(1), { expectedOffset }),
          ErrorCode.InvalidArgument,
        );
        expect((await engine.shardInfo('s')).nextOffset).toBe(0);
        expect((await engine.read('s', 0, { maxBytes: 1024 })).batches).toEqual([]);
      },
    );

    if (subject.harness.persistent) {
      it('holds against the next offset recovered on reopen', async () => {
        await subject.engine.createShard('s');
        const before = makeBatches(3, { recordCount: 2 });
        for (const batch of before) await subject.engine.append('s', [batch]);
        const engine = await subject.reopen();
        for (const expectedOffset of [0, 5, 7]) {
          await expectErrorCode(engine.append('s', makeBatches(1), { expectedOffset }), ErrorCode.Conflict);
        }
        const after = makeBatches(1);
        expect((await engine.append('s', after, { expectedOffset: 6 })).baseOffset).toBe(6);
        expectStoredBatches(await readAll(engine, 's'), storedFrom([...before.map((b) => [b]), after]));
      });
    }
  });
}
