import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { SuiteContext } from './context.js';
import { describeEvent, record, text } from './context.js';

/** Watches: live events, prefix filtering, order, resuming afterRevision, close, throwing listeners. */
export function watchTests(context: SuiteContext): void {
  describe('watch', () => {
    it('delivers puts and deletes under the prefix with their entries and revisions', async () => {
      const watch = record(context.store, '/t/');
      const put = await context.store.put('/t/a', text('1'));
      const overwrite = await context.store.put('/t/a', text('2'));
      await context.store.delete('/t/a');
      const deleted = await context.store.revision();
      await watch.waitFor(3);
      expect(watch.events).toEqual([
        {
          type: 'put',
          revision: put,
          entry: { key: '/t/a', value: text('1'), createRevision: put, modRevision: put, version: 1 },
        },
        {
          type: 'put',
          revision: overwrite,
          entry: { key: '/t/a', value: text('2'), createRevision: put, modRevision: overwrite, version: 2 },
        },
        { type: 'delete', key: '/t/a', revision: deleted },
      ]);
      watch.watch.close();
    });

    it('delivers only the keys under its prefix, in revision order', async () => {
      const narrow = record(context.store, '/t/');
      const all = record(context.store, '');
      await context.store.put('/u/x', text('no'));
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => context.store.put(`/t/${i % 5}`, text(String(i)))),
      );
      await context.store.put('/u/y', text('no'));
      await all.waitFor(22);
      expect(narrow.events).toHaveLength(20);
      expect(narrow.events.every((event) => event.type === 'put' && event.entry.key.startsWith('/t/'))).toBe(
        true,
      );
      const revisions = all.events.map((event) => event.revision);
      expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
      expect(new Set(revisions).size).toBe(22);
      narrow.watch.close();
      all.watch.close();
    });

    it('does not deliver a deletion of a key that did not exist', async () => {
      const watch = record(context.store, '');
      await context.store.delete('/never');
      await context.store.put('/marker', text('m'));
      await watch.waitFor(1);
      expect(watch.events.map(describeEvent)).toEqual([`put /marker=m@${await context.store.revision()}`]);
      watch.watch.close();
    });

    it('replays the events after afterRevision, then live ones, each once', async () => {
      const first = await context.store.put('/t/a', text('1'));
      const second = await context.store.put('/t/b', text('2'));
      await context.store.put('/u/other', text('x'));
      await context.store.delete('/t/a');
      const deleted = await context.store.revision();
      const watch = record(context.store, '/t/', { afterRevision: first });
      const live = await context.store.put('/t/c', text('3'));
      await watch.waitFor(3);
      expect(watch.events.map(describeEvent)).toEqual([
        `put /t/b=2@${second}`,
        `delete /t/a@${deleted}`,
        `put /t/c=3@${live}`,
      ]);
      watch.watch.close();
    });

    it('delivers only live events when afterRevision is the current revision', async () => {
      await context.store.put('/t/a', text('1'));
      const watch = record(context.store, '/t/', { afterRevision: await context.store.revision() });
      const live = await context.store.put('/t/b', text('2'));
      await watch.waitFor(1);
      expect(watch.events.map(describeEvent)).toEqual([`put /t/b=2@${live}`]);
      watch.watch.close();
    });

    it('lets several watches resume from different revisions', async () => {
      const revisions: number[] = [];
      for (let i = 0; i < 5; i++) revisions.push(await context.store.put('/k', text(String(i))));
      const fromStart = record(context.store, '/k', { afterRevision: revisions[0]! - 1 });
      const fromMiddle = record(context.store, '/k', { afterRevision: revisions[2]! });
      await fromStart.waitFor(5);
      await fromMiddle.waitFor(2);
      expect(fromStart.events.map((event) => event.revision)).toEqual(revisions);
      expect(fromMiddle.events.map((event) => event.revision)).toEqual(revisions.slice(3));
      fromStart.watch.close();
      fromMiddle.watch.close();
    });

    it('delivers nothing after close', async () => {
      const closed = record(context.store, '/t/');
      const witness = record(context.store, '/t/');
      await context.store.put('/t/a', text('1'));
      await closed.waitFor(1);
      closed.watch.close();
      closed.watch.close();
      await context.store.put('/t/b', text('2'));
      await witness.waitFor(2);
      expect(closed.events).toHaveLength(1);
      witness.watch.close();
    });

    it('survives a listener that throws: the store and other watches go on', async () => {
      let calls = 0;
      const thrower = context.store.watch('/t/', () => {
        calls++;
        throw new Error('listener failure');
      });
      const witness = record(context.store, '/t/');
      await context.store.put('/t/a', text('1'));
      await context.store.put('/t/b', text('2'));
      await witness.waitFor(2);
      expect(calls).toBe(2);
      expect((await context.store.get('/t/b'))?.version).toBe(1);
      thrower.close();
      witness.watch.close();
    });

    it('gives listeners values they can change without changing the store', async () => {
      const watch = context.store.watch('/t/', (event) => {
        if (event.type === 'put') event.entry.value.fill(0);
      });
      const witness = record(context.store, '/t/');
      await context.store.put('/t/a', text('kept'));
      await witness.waitFor(1);
      expect((await context.store.get('/t/a'))?.value).toEqual(text('kept'));
      watch.close();
      witness.watch.close();
    });

    it('refuses a negative afterRevision with INVALID_ARGUMENT', () => {
      expect(() => context.store.watch('', () => {}, { afterRevision: -1 })).toThrow(
        expect.objectContaining({ code: ErrorCode.InvalidArgument }) as Error,
      );
    });
  });
}
