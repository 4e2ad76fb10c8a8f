import { describe, expect, it } from 'vitest';
import type { SuiteContext } from './context.js';
import { keys, text } from './context.js';

/** Range listing: prefix, key order, startAfter paging and limit. */
export function listTests(context: SuiteContext): void {
  describe('list', () => {
    const fill = async (names: string[]): Promise<void> => {
      for (const name of names) await context.store.put(name, text(name));
    };

    it('lists the keys under a prefix in key order', async () => {
      await fill(['/t/c', '/t/a', '/u/a', '/t/b', '/s/z']);
      expect(keys(await context.store.list('/t/'))).toEqual(['/t/a', '/t/b', '/t/c']);
    });

    it('returns full entries', async () => {
      const revision = await context.store.put('/t/a', text('value'));
      expect(await context.store.list('/t/')).toEqual([
        { key: '/t/a', value: text('value'), createRevision: revision, modRevision: revision, version: 1 },
      ]);
    });

    it('matches the prefix as a string, not a path segment', async () => {
      await fill(['/ab', '/a/x', '/a', '/b']);
      expect(keys(await context.store.list('/a'))).toEqual(['/a', '/a/x', '/ab']);
      expect(keys(await context.store.list('/a/'))).toEqual(['/a/x']);
    });

    it('lists everything for the empty prefix and nothing for an unmatched one', async () => {
      await fill(['/b', '/a', '/c']);
      expect(keys(await context.store.list(''))).toEqual(['/a', '/b', '/c']);
      expect(await context.store.list('/zzz')).toEqual([]);
    });

    it('leaves deleted keys out', async () => {
      await fill(['/t/a', '/t/b', '/t/c']);
      await context.store.delete('/t/b');
      expect(keys(await context.store.list('/t/'))).toEqual(['/t/a', '/t/c']);
    });

    it('starts strictly after startAfter, whether or not that key exists', async () => {
      await fill(['/t/a', '/t/b', '/t/c', '/t/d']);
      expect(keys(await context.store.list('/t/', { startAfter: '/t/b' }))).toEqual(['/t/c', '/t/d']);
      expect(keys(await context.store.list('/t/', { startAfter: '/t/bb' }))).toEqual(['/t/c', '/t/d']);
      expect(keys(await context.store.list('/t/', { startAfter: '/t/d' }))).toEqual([]);
      expect(keys(await context.store.list('/t/', { startAfter: '/a' }))).toEqual([
        '/t/a',
        '/t/b',
        '/t/c',
        '/t/d',
      ]);
      expect(keys(await context.store.list('/t/', { startAfter: '/z' }))).toEqual([]);
    });

    it('returns at most limit entries', async () => {
      await fill(['/t/a', '/t/b', '/t/c']);
      expect(keys(await context.store.list('/t/', { limit: 2 }))).toEqual(['/t/a', '/t/b']);
      expect(keys(await context.store.list('/t/', { limit: 10 }))).toEqual(['/t/a', '/t/b', '/t/c']);
    });

    it('pages through a large prefix with startAfter and limit, each key once, in order', async () => {
      const names = Array.from({ length: 250 }, (_, i) => `/p/${String(i).padStart(4, '0')}`);
      await Promise.all(names.map((name) => context.store.put(name, text(name))));
      await context.store.put('/q/outside', text('x'));
      const seen: string[] = [];
      let startAfter: string | undefined;
      for (;;) {
        const page = await context.store.list(
          '/p/',
          startAfter === undefined ? { limit: 40 } : { limit: 40, startAfter },
        );
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(40);
        seen.push(...keys(page));
        startAfter = page[page.length - 1]!.key;
      }
      expect(seen).toEqual(names);
    });
  });
}
