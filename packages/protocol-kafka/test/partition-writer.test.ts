import {
  ErrorCode,
  RobustMQError,
  type AppendResult,
  type RecordBatch,
  type StorageEngine,
} from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { encodeRecordBatch, readBatchHeader } from '../src/codec/index.js';
import { PartitionWriter, type Appending } from '../src/broker/partition-writer.js';

interface AppendCall {
  shard: string;
  batches: readonly RecordBatch[];
}

/** Just the storage calls the writer makes: shard info and appends, recorded in order. */
function storageOf(append: (call: AppendCall) => Promise<AppendResult>): {
  storage: StorageEngine;
  calls: AppendCall[];
  infoCalls: string[];
} {
  const calls: AppendCall[] = [];
  const infoCalls: string[] = [];
  const next = new Map<string, number>();
  const storage = {
    shardInfo: (shard: string) => {
      infoCalls.push(shard);
      return Promise.resolve({ nextOffset: next.get(shard) ?? 100 });
    },
    append: (shard: string, batches: readonly RecordBatch[]) => {
      const call = { shard, batches };
      calls.push(call);
      return append(call).then((result) => {
        next.set(shard, result.lastOffset + 1);
        return result;
      });
    },
  } as unknown as StorageEngine;
  return { storage, calls, infoCalls };
}

async function batchOf(records: number): Promise<Buffer> {
  return encodeRecordBatch({
    records: Array.from({ length: records }, (_, i) => ({ value: `v${i}`, timestamp: 1000 + i })),
  });
}

/** Queues one batch on the writer and returns once it is queued (not yet stored). */
async function queue(writer: PartitionWriter, partition: number, batch: Buffer): Promise<Appending> {
  return writer.withShard('t', partition, (append) => append(batch, 1000));
}

describe('PartitionWriter', () => {
  it('hands the batches queued in one pass of the event loop to storage together, in order', async () => {
    const offsets = new Map<string, number>();
    const { storage, calls } = storageOf(({ shard, batches }) => {
      const base = offsets.get(shard) ?? 100;
      const count = batches.reduce((n, b) => n + b.recordCount, 0);
      offsets.set(shard, base + count);
      return Promise.resolve({ baseOffset: base, lastOffset: base + count - 1, logStartOffset: 0 });
    });
    const writer = new PartitionWriter(storage);
    const batches = [await batchOf(2), await batchOf(3), await batchOf(1), await batchOf(4)];
    const queued = await Promise.all([
      queue(writer, 0, batches[0]!),
      queue(writer, 0, batches[1]!),
      queue(writer, 1, batches[2]!),
      queue(writer, 0, batches[3]!),
    ]);
    // Queued with their offsets in place, but nothing handed to storage yet.
    expect(calls).toEqual([]);
    expect(batches.map((b) => readBatchHeader(b).baseOffset)).toEqual([100, 102, 100, 105]);
    const stored = await Promise.all(queued.map((q) => q.stored));
    // In order per shard.
    const counts = (shard: string) =>
      calls.filter((c) => c.shard === shard).map((c) => c.batches[0]!.recordCount);
    expect(counts('t/0')).toEqual([2, 3, 4]);
    expect(counts('t/1')).toEqual([1]);
    expect(calls.every((c) => c.batches.length === 1)).toBe(true);
    expect(stored.map((s) => s.baseOffset)).toEqual([100, 102, 100, 105]);
    expect(readBatchHeader(batches[0]!).partitionLeaderEpoch).toBe(0);
    // A later pass hands its batch over on its own.
    const later = await queue(writer, 0, await batchOf(1));
    expect((await later.stored).baseOffset).toBe(109);
    expect(calls).toHaveLength(5);
  });

  it('fails a batch storage refuses and asks storage for the next offset again', async () => {
    let refuse = true;
    const { storage, infoCalls } = storageOf(({ batches }) => {
      if (refuse) return Promise.reject(new RobustMQError(ErrorCode.Unavailable, 'disk gone'));
      return Promise.resolve({
        baseOffset: 100,
        lastOffset: 100 + batches[0]!.recordCount - 1,
        logStartOffset: 0,
      });
    });
    const writer = new PartitionWriter(storage);
    const failed = await queue(writer, 0, await batchOf(2));
    await expect(failed.stored).rejects.toThrow('disk gone');
    refuse = false;
    const batch = await batchOf(1);
    const next = await queue(writer, 0, batch);
    expect((await next.stored).baseOffset).toBe(100);
    expect(readBatchHeader(batch).baseOffset).toBe(100);
    expect(infoCalls).toEqual(['t/0', 't/0']);
  });

  it('fails a batch whose append throws at once without holding up the others', async () => {
    const { storage } = storageOf(({ batches }) =>
      Promise.resolve({ baseOffset: 100, lastOffset: 100 + batches[0]!.recordCount - 1, logStartOffset: 0 }),
    );
    const append = storage.append.bind(storage);
    storage.append = (shard, batches) => {
      if (shard === 't/1') throw new RobustMQError(ErrorCode.NotFound, 'no such shard');
      return append(shard, batches);
    };
    const writer = new PartitionWriter(storage);
    const [bad, good] = await Promise.all([
      queue(writer, 1, await batchOf(1)),
      queue(writer, 0, await batchOf(1)),
    ]);
    await expect(bad.stored).rejects.toThrow('no such shard');
    expect((await good.stored).baseOffset).toBe(100);
  });

  it('learns the log start from the append, asking storage for shard info only for the first offset', async () => {
    let next = 100;
    let logStart = 40;
    const { storage, infoCalls } = storageOf(({ batches }) => {
      const base = next;
      next += batches[0]!.recordCount;
      return Promise.resolve({ baseOffset: base, lastOffset: next - 1, logStartOffset: logStart });
    });
    const writer = new PartitionWriter(storage);
    expect((await (await queue(writer, 0, await batchOf(1))).stored).logStartOffset).toBe(40);
    expect(infoCalls).toEqual(['t/0']);
    // Later passes, pipelined or one by one, as storage's log start moves.
    logStart = 45;
    const pipelined = await Promise.all([
      queue(writer, 0, await batchOf(2)),
      queue(writer, 0, await batchOf(1)),
    ]);
    const stored = await Promise.all(pipelined.map((q) => q.stored));
    expect(stored.map((s) => [s.baseOffset, s.logStartOffset])).toEqual([
      [101, 45],
      [103, 45],
    ]);
    logStart = 50;
    expect((await (await queue(writer, 0, await batchOf(1))).stored).logStartOffset).toBe(50);
    expect(infoCalls).toEqual(['t/0']);
  });
});
