import { open as fsOpen, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '@robustmq/core';
import { ReadMemory } from '../src/read-memory.js';
import { batch, open, segmentLogs, sha, tempDir } from './helpers.js';

/** 400-byte batches make 432-byte frames. */
const DATA = 400;
const FRAME = DATA + 32;

/** Whether `data` lies inside `lent`'s memory. */
function isViewOf(data: Uint8Array, lent: Uint8Array): boolean {
  return (
    data.buffer === lent.buffer &&
    data.byteOffset >= lent.byteOffset &&
    data.byteOffset + data.length <= lent.byteOffset + lent.length
  );
}

async function shardOf(count: number, options: { segmentBytes?: number } = {}) {
  const dir = await tempDir();
  const engine = await open(dir);
  await engine.createShard('s', { retentionMs: null, ...options });
  const written = [];
  for (let i = 0; i < count; i++) {
    const b = batch(DATA, 1_000 + i);
    written.push(b);
    await engine.append('s', [b]);
  }
  return { dir, engine, written };
}

describe('journal reads into a lent buffer', () => {
  it('returns views of the lent buffer when the span fits, with the bytes written', async () => {
    const { engine, written } = await shardOf(20);
    const into = Buffer.alloc(256 * 1024, 0xa5);
    const { batches } = await engine.read('s', 0, { maxBytes: 1 << 20, into });
    expect(batches.map((b) => b.baseOffset)).toEqual([...Array(20).keys()]);
    expect(batches.every((b) => isViewOf(b.data, into))).toBe(true);
    expect(batches.map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
  });

  it('falls back to fresh memory for a span larger than the lent buffer', async () => {
    const { engine, written } = await shardOf(20);
    // Smaller than the 64 KiB the read asks of the file at least: nothing goes into it.
    const into = Buffer.alloc(4 * FRAME, 0xa5);
    const { batches } = await engine.read('s', 2, { maxBytes: 1 << 20, into });
    expect(batches.map((b) => b.baseOffset)).toEqual([...Array(18).keys()].map((i) => i + 2));
    expect(batches.some((b) => isViewOf(b.data, into))).toBe(false);
    expect(batches.map((b) => sha(b.data))).toEqual(written.slice(2).map((b) => sha(b.data)));
    expect(into.every((byte) => byte === 0xa5)).toBe(true);
  });

  it('uses the lent buffer for the spans that fit and fresh memory for the rest of a read', async () => {
    // 9 frames to a segment: each segment's span is read on its own.
    const { engine, written } = await shardOf(40, { segmentBytes: 9 * FRAME });
    const into = Buffer.alloc(20 * FRAME);
    const { batches } = await engine.read('s', 0, { maxBytes: 1 << 20, into });
    expect(batches.length).toBe(40);
    expect(batches.map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
    const inLent = batches.filter((b) => isViewOf(b.data, into)).length;
    expect(inLent).toBe(18);
    expect(batches.slice(0, 18).every((b) => isViewOf(b.data, into))).toBe(true);
  });

  it('rejects a frame corrupted on disk with CORRUPT when reading into a lent buffer', async () => {
    const { dir, engine, written } = await shardOf(10);
    await engine.close();
    const [log] = await segmentLogs(dir, 's');
    const bytes = await readFile(log!);
    const at = 5 * FRAME + 50;
    bytes[at] = bytes[at]! ^ 0xff;
    await writeFile(log!, bytes);
    const reopened = await open(dir);
    const into = Buffer.alloc(256 * 1024);
    for (let i = 0; i < 3; i++) {
      const { batches } = await reopened.read('s', 0, { maxBytes: 1 << 20, into });
      expect(batches.map((b) => b.baseOffset)).toEqual([0, 1, 2, 3, 4]);
      expect(batches.every((b) => isViewOf(b.data, into))).toBe(true);
      expect(batches.map((b) => sha(b.data))).toEqual(written.slice(0, 5).map((b) => sha(b.data)));
      await expect(reopened.read('s', 5, { maxBytes: 1 << 20, into })).rejects.toMatchObject({
        code: ErrorCode.Corrupt,
      });
    }
  });

  it('checks every frame again on each read into the same buffer', async () => {
    const { dir, engine } = await shardOf(10);
    const into = Buffer.alloc(256 * 1024);
    expect((await engine.read('s', 0, { maxBytes: 1 << 20, into })).batches.length).toBe(10);
    // The log goes bad after a good read into the buffer, which still holds the good bytes.
    const [log] = await segmentLogs(dir, 's');
    const bytes = await readFile(log!);
    bytes[7 * FRAME + 40] = bytes[7 * FRAME + 40]! ^ 0x01;
    await writeFile(log!, bytes);
    await expect(engine.read('s', 7, { maxBytes: 1 << 20, into })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
  });

  it('rejects an into that is not a Uint8Array as INVALID_ARGUMENT', async () => {
    const { engine } = await shardOf(1);
    const into = [1, 2, 3] as unknown as Uint8Array;
    await expect(engine.read('s', 0, { maxBytes: 1024, into })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
  });
});

describe('ReadMemory', () => {
  it('hands out consecutive parts of the lent buffer, then fresh memory', () => {
    const lent = new Uint8Array(100);
    const memory = new ReadMemory(lent.subarray(10, 90));
    const first = memory.take(50);
    const second = memory.take(40);
    const third = memory.take(30);
    expect(first.buffer).toBe(lent.buffer);
    expect(first.byteOffset).toBe(10);
    expect(second.buffer).not.toBe(lent.buffer);
    expect(third.buffer).toBe(lent.buffer);
    expect(third.byteOffset).toBe(60);
    expect(memory.take(1).buffer).not.toBe(lent.buffer);
  });
});

describe('journal read spans', () => {
  it('sizes the span after a full one to the budget left, not to a whole new read', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', { retentionMs: null });
    // 16 KiB batches: an 8 MiB span holds 511 frames, a little less data than an 8 MiB budget.
    const data = 16 * 1024;
    const written = [];
    for (let i = 0; i < 768; i++) {
      const b = batch(data, 1_000 + i);
      written.push(b);
      await engine.append('s', [b]);
    }
    const maxBytes = 8 * 1024 * 1024;
    // Every FileHandle shares one prototype: count the bytes the read asks of the file.
    const probe = await fsOpen(join(dir, 'probe'), 'w+');
    const prototype = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const reads = vi.spyOn(prototype, 'read');
    try {
      const { batches } = await engine.read('s', 0, { maxBytes });
      expect(batches.length).toBe(512);
      expect(batches.map((b) => sha(b.data))).toEqual(written.slice(0, 512).map((b) => sha(b.data)));
      const asked = reads.mock.calls.reduce((sum, call) => sum + Number((call as unknown[])[2] ?? 0), 0);
      // One span of 8 MiB, then one small one for the last frame: not a second 8 MiB.
      expect(asked).toBeGreaterThanOrEqual(maxBytes);
      expect(asked).toBeLessThan(maxBytes + 256 * 1024);
    } finally {
      reads.mockRestore();
    }
  });
});
