import { ErrorCode, RobustMQError, type ReadResult, type RecordBatch } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReadAhead, ReadAheadMemory, type ReadAheadOutcome } from '../src/broker/read-ahead.js';
import { ReadBuffers } from '../src/broker/read-buffers.js';

const MiB = 1024 * 1024;
const SHARD = 'orders/0';
/** Each batch: 4 records, 1000 bytes all `byte`. */
const BATCH_BYTES = 1000;

function batch(byte: number): RecordBatch {
  return { data: Buffer.alloc(BATCH_BYTES, byte), recordCount: 4, maxTimestamp: Date.now() };
}

/** The offsets and first byte of each batch, to compare reads without their buffers. */
function shape(result: ReadResult) {
  return {
    batches: result.batches.map((b) => ({ offset: b.baseOffset, byte: b.data[0], length: b.data.length })),
    logStartOffset: result.logStartOffset,
    nextOffset: result.nextOffset,
  };
}

let storage: MemoryStorageEngine;
let buffers: ReadBuffers;
let memory: ReadAheadMemory;
let outcomes: ReadAheadOutcome[];

function readAhead(limits = { lifetimeMs: 60_000, maxBytes: 32 * MiB }): ReadAhead {
  return new ReadAhead(storage, buffers, memory, limits, (outcome) => outcomes.push(outcome));
}

async function append(shard: string, ...bytes: number[]): Promise<void> {
  for (const byte of bytes) await storage.append(shard, [batch(byte)]);
}

beforeEach(async () => {
  storage = new MemoryStorageEngine();
  buffers = new ReadBuffers();
  memory = new ReadAheadMemory();
  outcomes = [];
  await storage.createShard(SHARD);
  // Five batches: offsets 0, 4, 8, 12, 16; the log ends at 20.
  await append(SHARD, 1, 2, 3, 4, 5);
});

afterEach(async () => {
  await storage.close();
});

describe('reads ahead of a consumer', () => {
  it('serves what a read now would return, and the Fetch takes over its buffer', async () => {
    const ahead = readAhead();
    ahead.start(SHARD, 8, 2 * BATCH_BYTES);
    expect(ahead.heldBytes).toBe(MiB);
    expect(memory.reserved).toBe(MiB);
    const hit = await ahead.take(SHARD, 8, 2 * BATCH_BYTES);
    const fresh = await storage.read(SHARD, 8, { maxBytes: 2 * BATCH_BYTES });
    expect(shape(hit!.result)).toEqual(shape(fresh));
    expect(hit!.buffer.length).toBe(MiB);
    expect(ahead.heldBytes).toBe(0);
    expect(memory.reserved).toBe(0);
    expect(outcomes).toEqual(['used']);
    // Taken once: the next Fetch of the same offset reads for itself.
    expect(await ahead.take(SHARD, 8, 2 * BATCH_BYTES)).toBeNull();
  });

  it('reports the log end and start as they are when taken, not as they were when read', async () => {
    const ahead = readAhead();
    ahead.start(SHARD, 4, BATCH_BYTES);
    await append(SHARD, 6);
    await storage.deleteBefore(SHARD, 2);
    const hit = await ahead.take(SHARD, 4, BATCH_BYTES);
    expect(shape(hit!.result)).toEqual({
      batches: [{ offset: 4, byte: 2, length: BATCH_BYTES }],
      logStartOffset: 2,
      nextOffset: 24,
    });
  });

  it('discards a read ahead of another offset (a seek) and gives its buffer back', async () => {
    const ahead = readAhead();
    ahead.start(SHARD, 8, BATCH_BYTES);
    expect(await ahead.take(SHARD, 0, BATCH_BYTES)).toBeNull();
    expect(outcomes).toEqual(['discarded']);
    await vi.waitFor(() => expect(buffers.idleSize).toBe(MiB));
    expect(ahead.heldBytes).toBe(0);
  });

  it('discards a read ahead made with another byte limit than the Fetch now has', async () => {
    const ahead = readAhead();
    ahead.start(SHARD, 0, 3 * BATCH_BYTES);
    expect(await ahead.take(SHARD, 0, 2 * BATCH_BYTES)).toBeNull();
    // A larger limit would read more than was read ahead.
    ahead.start(SHARD, 0, 2 * BATCH_BYTES);
    expect(await ahead.take(SHARD, 0, 3 * BATCH_BYTES)).toBeNull();
    expect(outcomes).toEqual(['discarded', 'discarded']);
  });

  it('does not hide records appended after a read that reached the log end', async () => {
    const ahead = readAhead();
    ahead.start(SHARD, 12, 10 * BATCH_BYTES);
    await vi.waitFor(() => expect(ahead.heldBytes).toBe(MiB));
    await append(SHARD, 6);
    expect(await ahead.take(SHARD, 12, 10 * BATCH_BYTES)).toBeNull();
    // Without new records it is served.
    ahead.start(SHARD, 12, 10 * BATCH_BYTES);
    const hit = await ahead.take(SHARD, 12, 10 * BATCH_BYTES);
    expect(hit!.result.batches.map((b) => b.baseOffset)).toEqual([12, 16, 20]);
    expect(hit!.result.nextOffset).toBe(24);
  });

  it('is not served once the log start has passed its offset', async () => {
    const ahead = readAhead();
    ahead.start(SHARD, 4, BATCH_BYTES);
    await storage.deleteBefore(SHARD, 8);
    expect(await ahead.take(SHARD, 4, BATCH_BYTES)).toBeNull();
    await expect(storage.read(SHARD, 4, { maxBytes: BATCH_BYTES })).rejects.toThrow();
  });

  it('is not served after the shard was deleted and created again, even with more records', async () => {
    const ahead = readAhead();
    ahead.start(SHARD, 4, BATCH_BYTES);
    const read = await storage.read(SHARD, 4, { maxBytes: BATCH_BYTES });
    expect(read.batches[0]!.data[0]).toBe(2);
    await storage.deleteShard(SHARD);
    await storage.createShard(SHARD);
    await append(SHARD, 7, 7, 7, 7, 7, 7, 7);
    expect(await ahead.take(SHARD, 4, BATCH_BYTES)).toBeNull();
  });

  it('discards a read ahead that failed instead of reporting its error', async () => {
    const failing = new MemoryStorageEngine();
    await failing.createShard(SHARD);
    const read = vi
      .spyOn(failing, 'read')
      .mockRejectedValueOnce(new RobustMQError(ErrorCode.Unavailable, 'disk away'));
    const ahead = new ReadAhead(failing, buffers, memory, undefined, (outcome) => outcomes.push(outcome));
    ahead.start(SHARD, 0, BATCH_BYTES);
    expect(read).toHaveBeenCalledTimes(1);
    expect(await ahead.take(SHARD, 0, BATCH_BYTES)).toBeNull();
    expect(outcomes).toEqual(['discarded']);
    // A shard that does not exist: no error escapes either.
    ahead.start('missing/0', 0, BATCH_BYTES);
    expect(await ahead.take('missing/0', 0, BATCH_BYTES)).toBeNull();
    await failing.close();
  });

  it('gives its buffer back when no Fetch takes it within its lifetime', async () => {
    const ahead = readAhead({ lifetimeMs: 50, maxBytes: 32 * MiB });
    ahead.start(SHARD, 0, BATCH_BYTES);
    await vi.waitFor(() => expect(buffers.idleSize).toBe(MiB));
    expect(ahead.heldBytes).toBe(0);
    expect(memory.reserved).toBe(0);
    expect(await ahead.take(SHARD, 0, BATCH_BYTES)).toBeNull();
    expect(outcomes).toEqual(['discarded']);
  });

  it('keeps one read ahead per partition, and does not start the same one twice', async () => {
    const read = vi.spyOn(storage, 'read');
    const ahead = readAhead();
    ahead.start(SHARD, 0, BATCH_BYTES);
    ahead.start(SHARD, 0, BATCH_BYTES);
    expect(read).toHaveBeenCalledTimes(1);
    ahead.start(SHARD, 4, BATCH_BYTES);
    expect(read).toHaveBeenCalledTimes(2);
    expect(ahead.heldBytes).toBe(MiB);
    expect(outcomes).toEqual(['discarded']);
    expect((await ahead.take(SHARD, 4, BATCH_BYTES))!.result.batches[0]!.baseOffset).toBe(4);
  });

  it('stays within its bytes per connection and the broker-wide bytes', async () => {
    await storage.createShard('orders/1');
    await storage.createShard('orders/2');
    await append('orders/1', 1);
    await append('orders/2', 1);
    const ahead = readAhead({ lifetimeMs: 60_000, maxBytes: 2 * MiB });
    ahead.start(SHARD, 0, BATCH_BYTES);
    ahead.start('orders/1', 0, BATCH_BYTES);
    ahead.start('orders/2', 0, BATCH_BYTES);
    expect(ahead.heldBytes).toBe(2 * MiB);
    expect(await ahead.take('orders/2', 0, BATCH_BYTES)).toBeNull();

    memory = new ReadAheadMemory(MiB);
    const first = readAhead();
    const second = readAhead();
    first.start(SHARD, 0, BATCH_BYTES);
    second.start(SHARD, 0, BATCH_BYTES);
    expect(first.heldBytes + second.heldBytes).toBe(MiB);
    first.close();
    second.start(SHARD, 0, BATCH_BYTES);
    expect(second.heldBytes).toBe(MiB);
  });

  it('lets everything go when the connection closes', async () => {
    await storage.createShard('orders/1');
    await append('orders/1', 1);
    const ahead = readAhead();
    ahead.start(SHARD, 0, BATCH_BYTES);
    ahead.start('orders/1', 0, BATCH_BYTES);
    ahead.close();
    expect(ahead.heldBytes).toBe(0);
    expect(memory.reserved).toBe(0);
    await vi.waitFor(() => expect(buffers.idleSize).toBe(2 * MiB));
    ahead.start(SHARD, 0, BATCH_BYTES);
    expect(ahead.heldBytes).toBe(0);
    expect(await ahead.take(SHARD, 0, BATCH_BYTES)).toBeNull();
  });
});
