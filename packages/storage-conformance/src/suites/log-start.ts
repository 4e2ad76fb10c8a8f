import { describe, expect, it } from 'vitest';
import { makeBatch, makeBatches } from '../batches.js';
import type { Subject } from '../subject.js';

export function describeAppendLogStart(subject: Subject): void {
  describe('the log start in append results', () => {
    it("equals the shard's log start after appends", async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      for (const batches of [makeBatches(1), makeBatches(3, { recordCount: 4 }), [makeBatch(2, 5000, 1)]]) {
        const result = await engine.append('s', batches);
        expect(result.logStartOffset).toBe((await engine.shardInfo('s')).logStartOffset);
        expect(result.logStartOffset).toBe(0);
      }
    });

    it('is the log start deleteBefore set, also inside a batch', async () => {
      const engine = subject.engine;
      await engine.createShard('s', { segmentBytes: 1024 });
      await engine.append('s', makeBatches(4, { recordCount: 5, bytes: 300 }));
      for (const [deleted, start] of [
        [7, 7],
        [10, 10],
        // Not moved back.
        [3, 10],
        [22, 22],
      ] as const) {
        expect(await engine.deleteBefore('s', deleted)).toBe(start);
        const result = await engine.append('s', makeBatches(1, { recordCount: 3 }));
        expect(result.logStartOffset).toBe(start);
        expect(result.logStartOffset).toBe((await engine.shardInfo('s')).logStartOffset);
      }
    });

    it('follows a deleteBefore that runs while appends are in flight, never moving back', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await engine.append('s', makeBatches(4, { recordCount: 5 }));
      const alongside = Array.from({ length: 16 }, () =>
        engine.append('s', makeBatches(1, { recordCount: 2 })),
      );
      expect(await engine.deleteBefore('s', 20)).toBe(20);
      const during = await Promise.all(alongside);
      const after = await engine.append('s', makeBatches(1));
      for (const result of during) expect([0, 20]).toContain(result.logStartOffset);
      const inOffsetOrder = [...during].sort((a, b) => a.baseOffset - b.baseOffset);
      inOffsetOrder.forEach((result, i) => {
        if (i > 0) expect(result.logStartOffset).toBeGreaterThanOrEqual(inOffsetOrder[i - 1]!.logStartOffset);
      });
      expect(after.logStartOffset).toBe(20);
    });
  });
}
