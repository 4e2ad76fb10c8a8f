import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { MetaStoreSuiteOptions, SuiteContext } from './context.js';
import { describeEvent, record, text } from './context.js';

/** close() and, for persistent stores, reopening on the same directory. */
export function lifecycleTests(context: SuiteContext, options: MetaStoreSuiteOptions): void {
  describe('close', () => {
    it('fails every call after close with CLOSED', async () => {
      await context.store.put('/k', text('v'));
      const store = context.store;
      const watch = record(store, '/');
      await context.close();
      expect(() => watch.watch.close()).not.toThrow();
      const closed = { code: ErrorCode.Closed };
      await expect(store.get('/k')).rejects.toMatchObject(closed);
      await expect(store.put('/k', text('w'))).rejects.toMatchObject(closed);
      await expect(store.delete('/k')).rejects.toMatchObject(closed);
      await expect(store.list('/')).rejects.toMatchObject(closed);
      await expect(store.revision()).rejects.toMatchObject(closed);
      expect(() => store.watch('/', () => {})).toThrow(expect.objectContaining(closed) as Error);
    });

    it('settles writes made before close: each resolves, or fails CLOSED, and resolved ones stay', async () => {
      const store = context.store;
      const writes = Array.from({ length: 10 }, (_, i) =>
        store.put(`/w/${i}`, text(String(i))).then(
          (revision) => ({ key: `/w/${i}`, revision }),
          (error: { code?: string }) => {
            expect(error.code).toBe(ErrorCode.Closed);
            return null;
          },
        ),
      );
      await context.close();
      const acknowledged = (await Promise.all(writes)).filter((write) => write !== null);
      expect(new Set(acknowledged.map((write) => write.revision)).size).toBe(acknowledged.length);
      if (options.persistent) {
        const reopened = await context.reopen();
        for (const write of acknowledged)
          expect((await reopened.get(write.key))?.modRevision).toBe(write.revision);
      }
    });
  });

  if (!options.persistent) return;

  describe('reopen', () => {
    it('holds every entry with its revisions after reopen', async () => {
      await context.store.put('/t/a', text('1'));
      await context.store.put('/t/b', text('2'));
      await context.store.put('/t/a', text('3'));
      await context.store.delete('/t/b');
      await context.store.put('/t/c', text('4'));
      const entries = await context.store.list('');
      const revision = await context.store.revision();
      const reopened = await context.reopen();
      expect(await reopened.list('')).toEqual(entries);
      expect(await reopened.get('/t/b')).toBeNull();
      expect(await reopened.revision()).toBe(revision);
    });

    it('continues the revision sequence and versions after reopen', async () => {
      const first = await context.store.put('/k', text('1'));
      const second = await context.store.put('/k', text('2'));
      const reopened = await context.reopen();
      await expect(reopened.put('/k', text('3'), { ifRevision: first })).rejects.toMatchObject({
        code: ErrorCode.Conflict,
      });
      const third = await reopened.put('/k', text('3'), { ifRevision: second });
      expect(third).toBeGreaterThan(second);
      const entry = await reopened.get('/k');
      expect(entry).toMatchObject({ createRevision: first, modRevision: third, version: 3 });
    });

    it('survives several reopen cycles with writes in between', async () => {
      let store = context.store;
      for (let cycle = 0; cycle < 4; cycle++) {
        for (let i = 0; i < 25; i++) await store.put(`/c/${cycle}/${i}`, text(`${cycle}.${i}`));
        store = await context.reopen();
      }
      expect(await store.list('/c/')).toHaveLength(100);
      expect((await store.get('/c/3/24'))?.value).toEqual(text('3.24'));
    });

    it('delivers live watch events on a reopened store', async () => {
      await context.store.put('/t/a', text('1'));
      const reopened = await context.reopen();
      const watch = record(reopened, '/t/');
      const revision = await reopened.put('/t/b', text('2'));
      await watch.waitFor(1);
      expect(watch.events.map(describeEvent)).toEqual([`put /t/b=2@${revision}`]);
      watch.watch.close();
    });
  });
}
