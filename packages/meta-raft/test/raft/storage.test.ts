import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/index.js';
import { confState, MemoryRaftStorage } from '../../src/index.js';

const entry = (term: number, index: number, data = ''): Entry => ({
  term,
  index,
  type: 'normal',
  data: new TextEncoder().encode(data),
});

describe('MemoryRaftStorage', () => {
  it('starts empty, or bootstrapped with a snapshot holding the founding membership', () => {
    const empty = new MemoryRaftStorage();
    expect([empty.firstIndex(), empty.lastIndex(), empty.term(0)]).toEqual([1, 0, 0]);
    const founded = MemoryRaftStorage.bootstrap(confState([1, 2, 3]));
    expect(founded.snapshot().metadata).toEqual({ index: 1, term: 1, conf: confState([1, 2, 3]) });
    expect([founded.firstIndex(), founded.lastIndex(), founded.term(1)]).toEqual([2, 1, 1]);
    expect(founded.hardState()).toEqual({ term: 1, vote: 0, commit: 1 });
  });

  it('appends, and replaces a suffix when a write starts inside the log', () => {
    const storage = MemoryRaftStorage.bootstrap(confState([1]));
    storage.append([entry(1, 2), entry(1, 3), entry(1, 4)]);
    storage.append([entry(2, 3, 'x')]);
    expect(storage.lastIndex()).toBe(3);
    expect(storage.entries(2, 4).map((e) => e.term)).toEqual([1, 2]);
    expect(() => storage.append([entry(2, 9)])).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument }),
    );
  });

  it('limits entries by size but returns at least one', () => {
    const storage = MemoryRaftStorage.bootstrap(confState([1]));
    storage.append([entry(1, 2, 'a'.repeat(100)), entry(1, 3, 'b'), entry(1, 4, 'c')]);
    expect(storage.entries(2, 5, 10)).toHaveLength(1);
    expect(storage.entries(3, 5, 34)).toHaveLength(2);
    expect(() => storage.entries(1, 3)).toThrow(
      expect.objectContaining({ code: ErrorCode.OffsetOutOfRange }),
    );
  });

  it('snapshots at a committed index and compacts only what a snapshot covers', () => {
    const storage = MemoryRaftStorage.bootstrap(confState([1]));
    storage.append([entry(1, 2), entry(2, 3), entry(2, 4)]);
    storage.setHardState({ term: 2, vote: 1, commit: 3 });
    expect(() => storage.createSnapshot(4, confState([1]), new Uint8Array())).toThrow(/commit 3/);
    expect(() => storage.compact(3)).toThrow(/latest snapshot is at 1/);
    storage.createSnapshot(3, confState([1]), new Uint8Array([7]));
    storage.compact(2);
    expect([storage.firstIndex(), storage.term(2), storage.term(1)]).toEqual([3, 1, undefined]);
    storage.compact(3);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(3)]).toEqual([4, 4, 2]);
  });

  it('replaces the whole log with a newer snapshot from the leader and ignores older ones', () => {
    const storage = MemoryRaftStorage.bootstrap(confState([1]));
    storage.append([entry(1, 2), entry(1, 3)]);
    const snapshot = { metadata: { index: 10, term: 3, conf: confState([1, 2]) }, data: new Uint8Array([1]) };
    storage.applySnapshot(snapshot);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(10)]).toEqual([11, 10, 3]);
    storage.applySnapshot({ ...snapshot, metadata: { ...snapshot.metadata, index: 5 } });
    expect(storage.snapshot()).toBe(snapshot);
  });
});
