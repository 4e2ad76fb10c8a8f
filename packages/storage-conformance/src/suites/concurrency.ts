import type { AppendResult, RecordBatch, StoredBatch } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectContiguous, expectStoredBatch, expectStoredBatches } from '../assertions.js';
import { makeBatch, makeBatches, recordCount, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

const AMPLE = { maxBytes: 64 * 1024 * 1024 };

interface Appended {
  batches: RecordBatch[];
  result: AppendResult;
}

/** Asserts that concurrent appends got distinct, consecutive ranges from 0 that fit their batches. */
function expectConsecutive(appends: Appended[]): Appended[] {
  const ordered = [...appends].sort((a, b) => a.result.baseOffset - b.result.baseOffset);
  let next = 0;
  for (const { batches, result } of ordered) {
    expect(result.baseOffset).toBe(next);
    expect(result.lastOffset).toBe(next + recordCount(batches) - 1);
    next = result.lastOffset + 1;
  }
  return ordered;
}

function storedInOrder(ordered: Appended[]): StoredBatch[] {
  return ordered.flatMap(({ batches, result }) => withOffsets(batches, result.baseOffset));
}

export function describeConcurrency(subject: Subject): void {
  describe('concurrency', () => {
    it('gives concurrent appends to one shard distinct consecutive offsets', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const groups = Array.from({ length: 64 }, (_, i) =>
        makeBatches(i % 5 === 0 ? 2 : 1, { recordCount: 1 + (i % 4), bytes: 32 + i }),
      );
      const appends = await Promise.all(
        groups.map(async (batches) => ({ batches, result: await engine.append('s', batches) })),
      );
      const ordered = expectConsecutive(appends);
      for (const { batches, result } of ordered) {
        const read = await engine.read('s', result.baseOffset, AMPLE);
        batches.forEach((batch, i) => {
          const base = result.baseOffset + recordCount(batches.slice(0, i));
          expectStoredBatch(read.batches[i], batch, base);
        });
      }
      expectStoredBatches(await readAll(engine, 's'), storedInOrder(ordered));
    });

    it('keeps concurrent appends to many shards apart', async () => {
      const engine = subject.engine;
      const shards = Array.from({ length: 16 }, (_, i) => `topic-${i}/0`);
      await Promise.all(shards.map((shard) => engine.createShard(shard)));
      // Round-robin over the shards, so appends to every shard are in flight together.
      const work = Array.from({ length: 8 }, (_, i) =>
        shards.map((shard) => ({ shard, batches: [makeBatch(1 + (i % 3), 48, Date.now())] })),
      ).flat();
      const done = await Promise.all(
        work.map(async ({ shard, batches }) => ({
          shard,
          batches,
          result: await engine.append(shard, batches),
        })),
      );
      for (const shard of shards) {
        const ordered = expectConsecutive(done.filter((entry) => entry.shard === shard));
        expectStoredBatches(await readAll(engine, shard), storedInOrder(ordered));
        expect((await engine.shardInfo(shard)).nextOffset).toBe(ordered.at(-1)!.result.lastOffset + 1);
      }
    });

    it('serves consistent reads while appends run', async () => {
      const engine = subject.engine;
      await engine.createShard('s');
      const batches = makeBatches(40, { recordCount: (i) => 1 + (i % 3), bytes: 80 });
      const stored = withOffsets(batches);
      let appending = true;
      const writer = (async () => {
        try {
          for (const batch of batches) await engine.append('s', [batch]);
        } finally {
          appending = false;
        }
      })();
      let reads = 0;
      while (appending || reads === 0) {
        const read = await engine.read('s', 0, AMPLE);
        reads++;
        expectContiguous(read.batches);
        expectStoredBatches(read.batches, stored.slice(0, read.batches.length));
        const last = read.batches.at(-1);
        if (last !== undefined)
          expect(last.baseOffset + last.recordCount).toBeLessThanOrEqual(read.nextOffset);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await writer;
      expectStoredBatches(await readAll(engine, 's'), stored);
    });

    it('holds many shards at once', async () => {
      const engine = subject.engine;
      const shards = Array.from({ length: 200 }, (_, i) => `many-${Math.floor(i / 10)}/${i % 10}`);
      await Promise.all(shards.map((shard) => engine.createShard(shard)));
      expect([...(await engine.listShards())].sort()).toEqual([...shards].sort());
      const written = new Map(
        shards.map((shard, i) => [shard, makeBatches(1, { recordCount: 1 + (i % 7) })]),
      );
      await Promise.all(shards.map((shard) => engine.append(shard, written.get(shard)!)));
      for (const shard of shards) {
        const batches = written.get(shard)!;
        expect((await engine.shardInfo(shard)).nextOffset).toBe(recordCount(batches));
        expectStoredBatches((await engine.read(shard, 0, AMPLE)).batches, withOffsets(batches));
      }
    });
  });
}
