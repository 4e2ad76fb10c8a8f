import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatch, expectStoredBatches } from '../assertions.js';
import { dataBytes, makeBatch, makeBatches, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

const AMPLE = { maxBytes: 64 * 1024 * 1024 };

export function describeAppendRead(subject: Subject): void {
  describe('append and read', () => {
    it('appends a batch at offset 0 and reads it back byte for byte', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batch = makeBatch(1, 100, Date.now());
      expect(await engine.append('s', [batch])).toEqual({ baseOffset: 0, lastOffset: 0, logStartOffset: 0 });
      const result = await engine.read('s', 0, AMPLE);
      expect(result.logStartOffset).toBe(0);
      expect(result.nextOffset).toBe(1);
      expect(result.batches).toHaveLength(1);
      expectStoredBatch(result.batches[0], batch, 0);
      expect((await engine.shardInfo('s')).nextOffset).toBe(1);
    });

    it('keeps its own copy of the appended bytes', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batch = makeBatch(2, 256, Date.now());
      const original = { ...batch, data: batch.data.slice() };
      await engine.append('s', [batch]);
      batch.data.fill(0xee);
      expectStoredBatch((await engine.read('s', 0, AMPLE)).batches[0], original, 0);
    });

    it('gives multi-record batches consecutive offset ranges', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const counts = [1, 5, 3, 10];
      const batches = counts.map((count) => makeBatch(count, 50, Date.now()));
      const results = [];
      for (const batch of batches) results.push(await engine.append('s', [batch]));
      expect(results).toEqual([
        { baseOffset: 0, lastOffset: 0, logStartOffset: 0 },
        { baseOffset: 1, lastOffset: 5, logStartOffset: 0 },
        { baseOffset: 6, lastOffset: 8, logStartOffset: 0 },
        { baseOffset: 9, lastOffset: 18, logStartOffset: 0 },
      ]);
      expect((await engine.shardInfo('s')).nextOffset).toBe(19);
      const read = await engine.read('s', 0, AMPLE);
      expectStoredBatches(read.batches, withOffsets(batches));
      expect(read.nextOffset).toBe(19);
    });

    it('appends several batches in one call, in order', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const first = [
        makeBatch(2, 40, Date.now()),
        makeBatch(3, 41, Date.now()),
        makeBatch(1, 42, Date.now()),
      ];
      const second = [makeBatch(4, 43, Date.now())];
      expect(await engine.append('s', first)).toEqual({ baseOffset: 0, lastOffset: 5, logStartOffset: 0 });
      expect(await engine.append('s', second)).toEqual({ baseOffset: 6, lastOffset: 9, logStartOffset: 0 });
      const read = await engine.read('s', 0, AMPLE);
      expectStoredBatches(read.batches, withOffsets([...first, ...second]));
    });

    it('stores every byte value and large batches intact', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const everyByte = new Uint8Array(4096).map((_, i) => i & 0xff);
      const allBytes = { recordCount: 3, maxTimestamp: Date.now(), data: everyByte };
      const large = makeBatch(7, 1024 * 1024 + 3, Date.now());
      await engine.append('s', [allBytes]);
      await engine.append('s', [large]);
      expectStoredBatches(
        await readAll(engine, 's', { maxBytes: 2 * 1024 * 1024 }),
        withOffsets([allBytes, large]),
      );
    });

    it('reads from the middle of a batch starting with the batch that contains the offset', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batches = makeBatches(3, { recordCount: 5 });
      await engine.append('s', batches);
      const stored = withOffsets(batches);
      expectStoredBatches((await engine.read('s', 3, AMPLE)).batches, stored);
      expectStoredBatches((await engine.read('s', 7, AMPLE)).batches, stored.slice(1));
      expectStoredBatches((await engine.read('s', 14, AMPLE)).batches, stored.slice(2));
    });

    it('returns the first batch whole even when it is larger than maxBytes', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batches = makeBatches(3, { bytes: 4096 });
      await engine.append('s', batches);
      for (const maxBytes of [0, 1, 4095]) {
        const read = await engine.read('s', 1, { maxBytes });
        expect(read.batches).toHaveLength(1);
        expectStoredBatch(read.batches[0], batches[1]!, 1);
      }
    });

    it('keeps to maxBytes after the first batch, filling up to it', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batches = makeBatches(10, { bytes: 100, recordCount: 2 });
      await engine.append('s', batches);
      const stored = withOffsets(batches);
      for (const [offset, maxBytes] of [
        [0, 250],
        [6, 350],
        [5, 100],
        [0, 1000],
      ] as const) {
        const read = await engine.read('s', offset, { maxBytes });
        const bytes = dataBytes(read.batches);
        expect(read.batches.length).toBeGreaterThanOrEqual(1);
        expect(bytes, `read at ${offset} with maxBytes ${maxBytes}`).toBeLessThanOrEqual(maxBytes);
        expect(bytes, `read at ${offset} with maxBytes ${maxBytes} fills up`).toBeGreaterThan(maxBytes - 100);
        const first = Math.floor(offset / 2);
        expectStoredBatches(read.batches, stored.slice(first, first + read.batches.length));
      }
    });

    it('reads nothing at the next offset', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      expect(await engine.read('s', 0, AMPLE)).toEqual({ batches: [], logStartOffset: 0, nextOffset: 0 });
      await engine.append('s', makeBatches(1, { recordCount: 3 }));
      expect(await engine.read('s', 3, AMPLE)).toEqual({ batches: [], logStartOffset: 0, nextOffset: 3 });
    });

    it('refuses reads beyond the next offset with OFFSET_OUT_OF_RANGE', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      await expectErrorCode(engine.read('s', 1, AMPLE), ErrorCode.OffsetOutOfRange);
      await engine.append('s', makeBatches(1, { recordCount: 3 }));
      await expectErrorCode(engine.read('s', 4, AMPLE), ErrorCode.OffsetOutOfRange);
      await expectErrorCode(engine.read('s', 1_000_000, AMPLE), ErrorCode.OffsetOutOfRange);
    });

    it('counts appended bytes in the shard size', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const before = (await engine.shardInfo('s')).sizeBytes;
      await engine.append('s', makeBatches(4, { bytes: 1024 }));
      const after = (await engine.shardInfo('s')).sizeBytes;
      expect(after).toBeGreaterThan(before);
      expect(Number.isSafeInteger(after)).toBe(true);
    });

    it.each(['fsync', 'group-commit', 'none'] as const)(
      'appends and reads under durability %s',
      async (durability) => {
        const engine = subject.engine;
        await engine.createShard('s', { durability });
        const batches = makeBatches(5, { recordCount: 2 });
        for (const batch of batches) await engine.append('s', [batch]);
        expectStoredBatches(await readAll(engine, 's'), withOffsets(batches));
      },
    );
  });
}
