import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { SuiteContext } from './context.js';
import { decode, text } from './context.js';

/** Compare-and-set on put and delete, including `ifRevision: 0` as create-only. */
export function compareAndSetTests(context: SuiteContext): void {
  describe('compare-and-set', () => {
    it('writes when ifRevision matches the modRevision', async () => {
      const first = await context.store.put('/k', text('a'));
      const second = await context.store.put('/k', text('b'), { ifRevision: first });
      expect(second).toBeGreaterThan(first);
      expect(decode((await context.store.get('/k'))!.value)).toBe('b');
    });

    it('fails with CONFLICT on a stale ifRevision and writes nothing', async () => {
      const first = await context.store.put('/k', text('a'));
      await context.store.put('/k', text('b'));
      const revision = await context.store.revision();
      await expect(context.store.put('/k', text('c'), { ifRevision: first })).rejects.toMatchObject({
        code: ErrorCode.Conflict,
      });
      const entry = await context.store.get('/k');
      expect(decode(entry!.value)).toBe('b');
      expect(entry?.version).toBe(2);
      expect(await context.store.revision()).toBe(revision);
    });

    it('creates with ifRevision 0 only when the key is absent', async () => {
      const created = await context.store.put('/lock', text('owner-1'), { ifRevision: 0 });
      await expect(context.store.put('/lock', text('owner-2'), { ifRevision: 0 })).rejects.toMatchObject({
        code: ErrorCode.Conflict,
      });
      const entry = await context.store.get('/lock');
      expect(decode(entry!.value)).toBe('owner-1');
      expect(entry?.modRevision).toBe(created);
    });

    it('treats a deleted key as absent for ifRevision 0', async () => {
      await context.store.put('/k', text('a'));
      await context.store.delete('/k');
      await context.store.put('/k', text('b'), { ifRevision: 0 });
      expect(decode((await context.store.get('/k'))!.value)).toBe('b');
    });

    it('fails with CONFLICT when ifRevision names a revision of a key that does not exist', async () => {
      const other = await context.store.put('/other', text('x'));
      await expect(context.store.put('/k', text('a'), { ifRevision: other })).rejects.toMatchObject({
        code: ErrorCode.Conflict,
      });
      expect(await context.store.get('/k')).toBeNull();
    });

    it('lets exactly one of many concurrent create-only writers win', async () => {
      const attempts = Array.from({ length: 16 }, (_, i) =>
        context.store.put('/leader', text(`node-${i}`), { ifRevision: 0 }).then(
          () => 'won',
          (error: { code?: string }) => error.code,
        ),
      );
      const outcomes = await Promise.all(attempts);
      expect(outcomes.filter((outcome) => outcome === 'won')).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome === ErrorCode.Conflict)).toHaveLength(15);
    });

    it('deletes when ifRevision matches and refuses a stale one with CONFLICT', async () => {
      const first = await context.store.put('/k', text('a'));
      const second = await context.store.put('/k', text('b'));
      await expect(context.store.delete('/k', { ifRevision: first })).rejects.toMatchObject({
        code: ErrorCode.Conflict,
      });
      expect(await context.store.get('/k')).not.toBeNull();
      expect(await context.store.delete('/k', { ifRevision: second })).toBe(true);
      expect(await context.store.get('/k')).toBeNull();
    });

    it('deletes with ifRevision 0 only as a no-op on an absent key', async () => {
      expect(await context.store.delete('/absent', { ifRevision: 0 })).toBe(false);
      await context.store.put('/present', text('x'));
      await expect(context.store.delete('/present', { ifRevision: 0 })).rejects.toMatchObject({
        code: ErrorCode.Conflict,
      });
      expect(await context.store.get('/present')).not.toBeNull();
    });
  });
}
