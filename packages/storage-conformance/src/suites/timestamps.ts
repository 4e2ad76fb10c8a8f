import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode } from '../assertions.js';
import { makeBatch } from '../batches.js';
import type { Subject } from '../subject.js';

// Timestamps here are far in the past; retention is off so no engine may drop them.
const NO_RETENTION = { retentionMs: null, retentionBytes: null };

export function describeOffsetForTimestamp(subject: Subject): void {
  describe('offsetForTimestamp', () => {
    it('finds the first batch whose max timestamp is at or after the timestamp', async () => {
      const engine = subject.engine;
      await engine.createShard('s', NO_RETENTION);
      await engine.append('s', [makeBatch(2, 32, 1000), makeBatch(3, 32, 2000)]);
      await engine.append('s', [makeBatch(1, 32, 3000)]);
      const cases: [number, number | null][] = [
        [0, 0],
        [500, 0],
        [1000, 0],
        [1001, 2],
        [2000, 2],
        [2500, 5],
        [3000, 5],
        [3001, null],
      ];
      for (const [timestamp, offset] of cases) {
        expect(await engine.offsetForTimestamp('s', timestamp), `timestamp ${timestamp}`).toBe(offset);
      }
    });

    it('answers null on an empty shard', async () => {
      const engine = subject.engine;
      await engine.createShard('s', NO_RETENTION);
      expect(await engine.offsetForTimestamp('s', 0)).toBeNull();
    });

    it('goes by the max timestamp of each batch when timestamps go backwards', async () => {
      const engine = subject.engine;
      await engine.createShard('s', NO_RETENTION);
      for (const timestamp of [1000, 3000, 2000, 4000])
        await engine.append('s', [makeBatch(2, 32, timestamp)]);
      expect(await engine.offsetForTimestamp('s', 1500)).toBe(2);
      expect(await engine.offsetForTimestamp('s', 2000)).toBe(2);
      expect(await engine.offsetForTimestamp('s', 3500)).toBe(6);
      expect(await engine.offsetForTimestamp('s', 4001)).toBeNull();
    });

    it('never answers an offset below the log start', async () => {
      const engine = subject.engine;
      await engine.createShard('s', NO_RETENTION);
      for (const timestamp of [1000, 2000, 3000, 4000])
        await engine.append('s', [makeBatch(5, 32, timestamp)]);
      await engine.deleteBefore('s', 5);
      expect(await engine.offsetForTimestamp('s', 0)).toBe(5);
      expect(await engine.offsetForTimestamp('s', 3000)).toBe(10);
      await engine.deleteBefore('s', 7);
      expect(await engine.offsetForTimestamp('s', 0)).toBe(7);
      expect(await engine.offsetForTimestamp('s', 2000)).toBe(7);
      expect(await engine.offsetForTimestamp('s', 2001)).toBe(10);
      await engine.deleteBefore('s', 20);
      expect(await engine.offsetForTimestamp('s', 0)).toBeNull();
    });

    it('answers NOT_FOUND for an unknown shard', async () => {
      await expectErrorCode(subject.engine.offsetForTimestamp('missing', 0), ErrorCode.NotFound);
    });
  });
}
