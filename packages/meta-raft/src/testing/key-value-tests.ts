import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { SuiteContext } from './context.js';
import { decode, text } from './context.js';

/** get, put, delete and the revision model: createRevision, modRevision, version, store revision. */
export function keyValueTests(context: SuiteContext): void {
  describe('get, put and delete', () => {
    it('returns null for a key never written', async () => {
      expect(await context.store.get('/missing')).toBeNull();
    });

    it('puts a value and gets it back with its revisions', async () => {
      const before = await context.store.revision();
      expect(Number.isSafeInteger(before) && before >= 0).toBe(true);
      const revision = await context.store.put('/topics/orders', text('v1'));
      expect(revision).toBeGreaterThan(before);
      expect(await context.store.revision()).toBe(revision);
      const entry = await context.store.get('/topics/orders');
      expect(entry).toEqual({
        key: '/topics/orders',
        value: text('v1'),
        createRevision: revision,
        modRevision: revision,
        version: 1,
      });
    });

    it('bumps modRevision and version on overwrite and keeps createRevision', async () => {
      const first = await context.store.put('/k', text('a'));
      const second = await context.store.put('/k', text('b'));
      const third = await context.store.put('/k', text('c'));
      expect(first).toBeLessThan(second);
      expect(second).toBeLessThan(third);
      const entry = await context.store.get('/k');
      expect(entry?.createRevision).toBe(first);
      expect(entry?.modRevision).toBe(third);
      expect(entry?.version).toBe(3);
      expect(decode(entry!.value)).toBe('c');
    });

    it('gives every write a new store revision, shared by none of the others', async () => {
      const revisions = [
        await context.store.put('/a', text('1')),
        await context.store.put('/b', text('2')),
        await context.store.put('/a', text('3')),
      ];
      expect(new Set(revisions).size).toBe(3);
      expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
    });

    it('deletes a key, bumping the revision, and reports whether it existed', async () => {
      await context.store.put('/k', text('v'));
      const before = await context.store.revision();
      expect(await context.store.delete('/k')).toBe(true);
      expect(await context.store.get('/k')).toBeNull();
      const after = await context.store.revision();
      expect(after).toBeGreaterThan(before);
      expect(await context.store.delete('/k')).toBe(false);
      expect(await context.store.delete('/never')).toBe(false);
      expect(await context.store.revision()).toBe(after);
    });

    it('starts a deleted then re-created key over at version 1', async () => {
      const created = await context.store.put('/k', text('old'));
      await context.store.put('/k', text('older'));
      await context.store.delete('/k');
      const recreated = await context.store.put('/k', text('new'));
      const entry = await context.store.get('/k');
      expect(recreated).toBeGreaterThan(created);
      expect(entry?.createRevision).toBe(recreated);
      expect(entry?.version).toBe(1);
      expect(decode(entry!.value)).toBe('new');
    });

    it('stores values byte for byte: empty, binary and large', async () => {
      const binary = new Uint8Array(256).map((_, i) => i);
      const large = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff);
      await context.store.put('/empty', new Uint8Array(0));
      await context.store.put('/binary', binary);
      await context.store.put('/large', large);
      expect((await context.store.get('/empty'))?.value).toEqual(new Uint8Array(0));
      expect((await context.store.get('/binary'))?.value).toEqual(binary);
      // Compared as one Buffer: element-wise deep equality on a megabyte is needlessly slow.
      const stored = (await context.store.get('/large'))?.value;
      expect(stored?.length).toBe(large.length);
      expect(Buffer.compare(Buffer.from(stored!), Buffer.from(large))).toBe(0);
    });

    it('keeps non-ASCII keys as given', async () => {
      await context.store.put('/users/zoë/ü-日本', text('x'));
      expect((await context.store.get('/users/zoë/ü-日本'))?.key).toBe('/users/zoë/ü-日本');
    });

    it('is not changed by the caller mutating a value after put or after get', async () => {
      const value = text('original');
      await context.store.put('/k', value);
      value.fill(0);
      const got = await context.store.get('/k');
      got!.value.fill(0);
      expect(decode((await context.store.get('/k'))!.value)).toBe('original');
    });

    it('gives concurrent writes distinct revisions and loses none', async () => {
      const writes = Array.from({ length: 64 }, (_, i) => context.store.put(`/c/${i}`, text(String(i))));
      const revisions = await Promise.all(writes);
      expect(new Set(revisions).size).toBe(64);
      expect(await context.store.revision()).toBe(Math.max(...revisions));
      for (let i = 0; i < 64; i++) {
        const entry = await context.store.get(`/c/${i}`);
        expect(entry?.modRevision).toBe(revisions[i]);
        expect(decode(entry!.value)).toBe(String(i));
      }
    });

    it('refuses an empty key with INVALID_ARGUMENT', async () => {
      await expect(context.store.put('', text('x'))).rejects.toMatchObject({
        code: ErrorCode.InvalidArgument,
      });
    });
  });
}
