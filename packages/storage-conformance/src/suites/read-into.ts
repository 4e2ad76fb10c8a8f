import { ErrorCode, type ReadResult, type StoredBatch } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatches, firstDifference } from '../assertions.js';
import { dataBytes, makeBatch, makeBatches, withOffsets } from '../batches.js';
import type { Subject } from '../subject.js';

const BATCH_BYTES = 10_000;

/**
 * Copies of the batches a read returned, as a caller that keeps them past the next read must
 * (`new Uint8Array(view)` copies; a Buffer's `slice` would not).
 */
function copyOut(result: ReadResult): StoredBatch[] {
  return result.batches.map((batch) => ({ ...batch, data: new Uint8Array(batch.data) }));
}

/** A lent buffer full of bytes no batch holds, so bytes an engine failed to write show up. */
function lentBuffer(bytes: number): Uint8Array {
  return new Uint8Array(bytes).fill(0xa5);
}

export function describeReadInto(subject: Subject): void {
  describe('reads into a buffer the caller lends (ReadOptions.into)', () => {
    /** A shard `s` of eight 10,000-byte batches of 3 records each, in small segments. */
    async function eightBatches(): Promise<StoredBatch[]> {
      const engine = subject.engine;
      await engine.createShard('s', { segmentBytes: 3 * BATCH_BYTES });
      const batches = makeBatches(8, { recordCount: 3, bytes: BATCH_BYTES });
      for (const batch of batches) await engine.append('s', [batch]);
      return withOffsets(batches);
    }

    const sizes: [string, number][] = [
      ['smaller than one batch', BATCH_BYTES / 2],
      ['exactly one batch', BATCH_BYTES],
      ['exactly all the data', 8 * BATCH_BYTES],
      ['larger than all the data', 16 * BATCH_BYTES],
      ['far larger than all the data', 1024 * 1024],
    ];
    for (const [label, size] of sizes) {
      it(`returns the same bytes as a read without it, into a buffer ${label}`, async () => {
        const stored = await eightBatches();
        const engine = subject.engine;
        for (const maxBytes of [1, 3 * BATCH_BYTES, 64 * BATCH_BYTES]) {
          const plain = copyOut(await engine.read('s', 0, { maxBytes }));
          const into = await engine.read('s', 0, { maxBytes, into: lentBuffer(size) });
          expect(into.nextOffset).toBe(24);
          expect(into.logStartOffset).toBe(0);
          expectStoredBatches(into.batches, plain);
          expectStoredBatches(into.batches, stored.slice(0, plain.length));
        }
      });
    }

    it('reads from the middle of a batch into the buffer', async () => {
      const stored = await eightBatches();
      const engine = subject.engine;
      for (const [offset, size] of [
        [1, 4 * BATCH_BYTES],
        [4, 256 * 1024],
        [13, 4 * BATCH_BYTES],
        [23, 256 * 1024],
      ] as const) {
        const result = await engine.read('s', offset, { maxBytes: 2 * BATCH_BYTES, into: lentBuffer(size) });
        const first = Math.floor(offset / 3);
        expect(result.batches.length).toBeGreaterThan(0);
        expectStoredBatches(result.batches, stored.slice(first, first + result.batches.length));
      }
    });

    it('a second read into the same buffer leaves what the caller copied out intact', async () => {
      const stored = await eightBatches();
      const engine = subject.engine;
      const buffer = lentBuffer(256 * 1024);
      const copies: StoredBatch[] = [];
      let offset = 0;
      for (let reads = 0; offset < 24; reads++) {
        expect(reads, 'reads needed to go through the shard').toBeLessThan(24);
        const result = await engine.read('s', offset, { maxBytes: 2 * BATCH_BYTES, into: buffer });
        expect(result.batches.length).toBeGreaterThan(0);
        // The views of this read are checked before the next read reuses the buffer.
        expectStoredBatches(result.batches, stored.slice(offset / 3, offset / 3 + result.batches.length));
        copies.push(...copyOut(result));
        const last = result.batches[result.batches.length - 1]!;
        offset = last.baseOffset + last.recordCount;
      }
      expectStoredBatches(copies, stored);
    });

    it('writes only inside the lent buffer, also when it is a view into larger memory', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batches = [makeBatch(2, 300, Date.now()), makeBatch(5, 700, Date.now())];
      await engine.append('s', batches);
      const memory = new Uint8Array(64 * 1024).fill(0x3c);
      const into = memory.subarray(1000, 1000 + 8 * 1024);
      const result = await engine.read('s', 0, { maxBytes: 64 * 1024, into });
      expectStoredBatches(result.batches, withOffsets(batches));
      const outside = new Uint8Array(memory.length - into.length).fill(0x3c);
      const untouched = new Uint8Array([...memory.subarray(0, 1000), ...memory.subarray(1000 + into.length)]);
      expect(firstDifference(untouched, outside), 'first byte changed outside the lent buffer').toBe(-1);
      expect(dataBytes(result.batches)).toBe(1000);
    });

    it('gives no batches at the next offset, and OFFSET_OUT_OF_RANGE past it, as without it', async () => {
      await eightBatches();
      const engine = subject.engine;
      const result = await engine.read('s', 24, { maxBytes: 1024, into: lentBuffer(1024) });
      expect(result.batches).toEqual([]);
      expect(result.nextOffset).toBe(24);
      await expectErrorCode(
        engine.read('s', 25, { maxBytes: 1024, into: lentBuffer(1024) }),
        ErrorCode.OffsetOutOfRange,
      );
    });
  });
}
