import { describe, expect, it } from 'vitest';
import { Publication } from '../src/publication.js';
import { RetainedStore } from '../src/retained-store.js';

const message = (topic: string, payload: string, expiresAt = 0) =>
  new Publication(topic, Buffer.from(payload), 1, true, undefined, expiresAt, 'c', null, 4, 0);

const topics = (list: Publication[]) => list.map((m) => m.topic).sort();

describe('RetainedStore', () => {
  it('stores, replaces and deletes (empty payload) retained messages', () => {
    const store = new RetainedStore();
    store.set(message('a/b', 'one'));
    store.set(message('a/b', 'two'));
    expect(store.size).toBe(1);
    expect(store.get('a/b')!.payload.toString()).toBe('two');
    store.set(message('a/b', ''));
    expect(store.get('a/b')).toBeNull();
    expect(store.size).toBe(0);
  });

  it('finds the messages a filter matches, honouring the $ rule', () => {
    const store = new RetainedStore();
    for (const t of ['a', 'a/b', 'a/b/c', 'a/x/c', 'b', '$SYS/uptime', '/lead']) store.set(message(t, t));
    expect(topics(store.match('a/#', 0))).toEqual(['a', 'a/b', 'a/b/c', 'a/x/c']);
    expect(topics(store.match('a/+/c', 0))).toEqual(['a/b/c', 'a/x/c']);
    expect(topics(store.match('#', 0))).toEqual(['/lead', 'a', 'a/b', 'a/b/c', 'a/x/c', 'b']);
    expect(topics(store.match('+', 0))).toEqual(['a', 'b']);
    expect(topics(store.match('+/lead', 0))).toEqual(['/lead']);
    expect(topics(store.match('$SYS/#', 0))).toEqual(['$SYS/uptime']);
    expect(topics(store.match('a/b', 0))).toEqual(['a/b']);
  });

  it('drops expired messages when it meets them', () => {
    const store = new RetainedStore();
    store.set(message('t/1', 'old', 1000));
    store.set(message('t/2', 'fresh', 5000));
    expect(topics(store.match('t/#', 2000))).toEqual(['t/2']);
    expect(store.size).toBe(1);
  });

  it('copies a payload out of a larger buffer so the buffer is not kept', () => {
    const chunk = Buffer.alloc(65_536);
    chunk.write('payload', 4);
    const m = new Publication('k', chunk.subarray(4, 11), 0, true, undefined, 0, null, null, 4, 0);
    new RetainedStore().set(m);
    expect(m.payload.toString()).toBe('payload');
    expect(m.payload.buffer).not.toBe(chunk.buffer);
  });
});
