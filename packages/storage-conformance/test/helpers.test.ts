import {
  ErrorCode,
  RobustMQError,
  type ReadOptions,
  type ReadResult,
  type StorageEngine,
  type StoredBatch,
} from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import {
  dataBytes,
  expectContiguous,
  expectErrorCode,
  expectStoredBatch,
  firstDifference,
  makeBatch,
  makeBatches,
  readAll,
  recordCount,
  settlesWithin,
  withOffsets,
} from '../src/index.js';

/** Just enough of an engine for readAll: a fixed list of batches served a few at a time. */
function pagedEngine(batches: StoredBatch[], perRead: number): StorageEngine {
  const next = batches.at(-1)!.baseOffset + batches.at(-1)!.recordCount;
  const engine: Pick<StorageEngine, 'read' | 'shardInfo'> = {
    read: (_shard: string, offset: number, _options: ReadOptions): Promise<ReadResult> => {
      const first = batches.findIndex((batch) => batch.baseOffset + batch.recordCount > offset);
      const page = first < 0 ? [] : batches.slice(first, first + perRead);
      return Promise.resolve({ batches: page, logStartOffset: 0, nextOffset: next });
    },
    shardInfo: () => Promise.reject(new Error('not used')),
  };
  return engine as StorageEngine;
}

describe('makeBatch', () => {
  it('makes data of the asked size, count and timestamp', () => {
    const batch = makeBatch(3, 100, 1234);
    expect(batch.recordCount).toBe(3);
    expect(batch.maxTimestamp).toBe(1234);
    expect(batch.data).toBeInstanceOf(Uint8Array);
    expect(batch.data.length).toBe(100);
  });

  it('gives the same data for the same seed and different data otherwise', () => {
    expect(makeBatch(1, 64, 0, 7).data).toEqual(makeBatch(1, 64, 0, 7).data);
    expect(firstDifference(makeBatch(1, 64, 0, 7).data, makeBatch(1, 64, 0, 8).data)).toBeGreaterThanOrEqual(
      0,
    );
    expect(firstDifference(makeBatch(1, 64, 0).data, makeBatch(1, 64, 0).data)).toBeGreaterThanOrEqual(0);
  });

  it('carries its seed in the first four bytes, and handles tiny sizes', () => {
    const batch = makeBatch(1, 8, 0, 0x01020304);
    expect([...batch.data.subarray(0, 4)]).toEqual([1, 2, 3, 4]);
    expect(makeBatch(1, 2, 0, 0x01020304).data).toEqual(new Uint8Array([1, 2]));
    expect(makeBatch(1, 0, 0).data.length).toBe(0);
  });
});

describe('makeBatches and withOffsets', () => {
  it('numbers batches the way an engine must', () => {
    const batches = makeBatches(4, {
      recordCount: (i) => i + 1,
      bytes: 10,
      firstTimestamp: 100,
      timestampStep: 5,
    });
    expect(batches.map((batch) => batch.maxTimestamp)).toEqual([100, 105, 110, 115]);
    expect(recordCount(batches)).toBe(10);
    expect(dataBytes(batches)).toBe(40);
    expect(withOffsets(batches, 7).map((batch) => batch.baseOffset)).toEqual([7, 8, 10, 13]);
  });
});

describe('assertions', () => {
  it('expectErrorCode passes on the right code only', async () => {
    await expectErrorCode(Promise.reject(new RobustMQError(ErrorCode.NotFound, 'x')), ErrorCode.NotFound);
    await expect(
      expectErrorCode(Promise.reject(new RobustMQError(ErrorCode.Closed, 'x')), ErrorCode.NotFound),
    ).rejects.toThrow(/NOT_FOUND, got RobustMQError CLOSED/);
    await expect(expectErrorCode(Promise.reject(new TypeError('boom')), ErrorCode.NotFound)).rejects.toThrow(
      /got TypeError: boom/,
    );
    await expect(expectErrorCode(Promise.resolve(1), ErrorCode.NotFound)).rejects.toThrow(/succeeded/);
  });

  it('firstDifference finds the first differing byte or a length mismatch', () => {
    expect(firstDifference(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(-1);
    expect(firstDifference(new Uint8Array([1, 2, 3]), new Uint8Array([1, 9, 3]))).toBe(1);
    expect(firstDifference(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toBe(2);
  });

  it('expectStoredBatch and expectContiguous catch a wrong batch', () => {
    const [a, b] = withOffsets(makeBatches(2, { recordCount: 2 }));
    expectStoredBatch(a, a!, 0);
    expect(() => expectStoredBatch(b, a!, 0)).toThrow();
    expect(() => expectStoredBatch({ ...a!, data: a!.data.map((x) => x ^ 1) }, a!, 0)).toThrow(
      /differing byte/,
    );
    expectContiguous([a!, b!]);
    expect(() => expectContiguous([a!, { ...b!, baseOffset: 3 }])).toThrow();
  });
});

describe('readAll', () => {
  it('pages through a shard to its next offset', async () => {
    const stored = withOffsets(makeBatches(10, { recordCount: 3 }));
    const all = await readAll(pagedEngine(stored, 3), 's', { from: 0 });
    expect(all.map((batch) => batch.baseOffset)).toEqual(stored.map((batch) => batch.baseOffset));
    const tail = await readAll(pagedEngine(stored, 4), 's', { from: 16 });
    expect(tail[0]!.baseOffset).toBe(15);
    expect(tail).toHaveLength(5);
  });

  it('stops with an error when a read makes no progress', async () => {
    const stored = withOffsets(makeBatches(3));
    const stuck = pagedEngine(stored, 1);
    const engine = {
      ...stuck,
      read: () => Promise.resolve({ batches: [stored[0]!], logStartOffset: 0, nextOffset: 3 }),
    };
    await expect(readAll(engine, 's', { from: 1 })).rejects.toThrow(/no progress/);
  });
});

describe('settlesWithin', () => {
  it('tells resolved, rejected and pending apart', async () => {
    expect(await settlesWithin(Promise.resolve(), 1000)).toBe('resolved');
    expect(await settlesWithin(Promise.reject(new Error('no')), 1000)).toBe('rejected');
    expect(await settlesWithin(new Promise(() => {}), 10)).toBe('pending');
  });
});
