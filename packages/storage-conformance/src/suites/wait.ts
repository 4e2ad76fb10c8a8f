import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode } from '../assertions.js';
import { makeBatches } from '../batches.js';
import { settlesWithin } from '../settle.js';
import type { Subject } from '../subject.js';

/** An engine timeout far beyond any wait in these tests, so a wake-up can only come from data. */
const LONG = 120_000;
/** How long a test gives a wait to settle before calling it stuck. Not a speed requirement. */
const PATIENCE = 5_000;
/** How long a test watches a wait that must stay pending. */
const GLANCE = 50;

export function describeWaitForData(subject: Subject): void {
  describe('waitForData', () => {
    it('resolves when a record arrives', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const waiting = engine.waitForData('s', 0, LONG);
      expect(await settlesWithin(waiting, GLANCE)).toBe('pending');
      await engine.append('s', makeBatches(1));
      expect(await settlesWithin(waiting, PATIENCE)).toBe('resolved');
    });

    it('resolves at once when the shard already has a record at the offset or later', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await engine.append('s', makeBatches(1, { recordCount: 5 }));
      expect(await settlesWithin(engine.waitForData('s', 0, LONG), PATIENCE)).toBe('resolved');
      expect(await settlesWithin(engine.waitForData('s', 4, LONG), PATIENCE)).toBe('resolved');
    });

    it('resolves on its timeout when nothing arrives', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      expect(await settlesWithin(engine.waitForData('s', 0, 30), PATIENCE)).toBe('resolved');
      await engine.append('s', makeBatches(1, { recordCount: 2 }));
      expect(await settlesWithin(engine.waitForData('s', 2, 30), PATIENCE)).toBe('resolved');
      expect((await engine.shardInfo('s')).nextOffset).toBe(2);
    });

    it('keeps waiting until a record at or after its offset arrives', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const waiting = engine.waitForData('s', 5, LONG);
      await engine.append('s', makeBatches(1, { recordCount: 2 }));
      expect(await settlesWithin(waiting, GLANCE)).toBe('pending');
      await engine.append('s', makeBatches(1, { recordCount: 4 }));
      expect(await settlesWithin(waiting, PATIENCE)).toBe('resolved');
    });

    it('wakes every waiter on the shard and only that shard', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await engine.createShard('other');
      const waiters = [engine.waitForData('s', 0, LONG), engine.waitForData('s', 0, LONG)];
      const other = engine.waitForData('other', 0, LONG);
      await engine.append('s', makeBatches(1));
      for (const waiting of waiters) expect(await settlesWithin(waiting, PATIENCE)).toBe('resolved');
      expect(await settlesWithin(other, GLANCE)).toBe('pending');
      await engine.append('other', makeBatches(1));
      expect(await settlesWithin(other, PATIENCE)).toBe('resolved');
    });

    it('refuses an unknown shard and a bad offset', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await expectErrorCode(engine.waitForData('missing', 0, 10), ErrorCode.NotFound);
      await expectErrorCode(engine.waitForData('s', -1, 10), ErrorCode.InvalidArgument);
    });
  });
}
