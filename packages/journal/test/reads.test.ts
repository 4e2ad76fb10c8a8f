import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@robustmq/core';
import type { OffloadedSegmentReader, SealedSegment } from '../src/index.js';
import { batch, open, segmentLogs, sha, tempDir } from './helpers.js';

/** 400-byte batches make 432-byte frames: 9 of them fill a 4096-byte segment. */
const DATA = 400;
const FRAMES_PER_SEGMENT = 9;

/** Keeps copies of offloaded logs in memory and records every read made of them. */
class MemoryCopies implements OffloadedSegmentReader {
  readonly copies = new Map<number, Buffer>();
  readonly reads: { baseOffset: number; position: number; length: number }[] = [];

  async keep(segment: SealedSegment): Promise<void> {
    this.copies.set(segment.baseOffset, await readFile(segment.logPath));
  }

  read(segment: SealedSegment, position: number, length: number): Promise<Uint8Array> {
    this.reads.push({ baseOffset: segment.baseOffset, position, length });
    const copy = this.copies.get(segment.baseOffset) ?? Buffer.alloc(0);
    return Promise.resolve(copy.subarray(position, position + length));
  }
}

async function offloadedShard(copies: MemoryCopies) {
  const dir = await tempDir();
  const engine = await open(dir, { offloadedReader: copies });
  await engine.createShard('s', { segmentBytes: 4096, retentionMs: null });
  const written = [];
  for (let i = 0; i < 4 * FRAMES_PER_SEGMENT; i++) {
    const b = batch(DATA, 1_000 + i);
    written.push(b);
    await engine.append('s', [b]);
  }
  for (const segment of await engine.sealedSegments('s')) {
    await copies.keep(segment);
    expect(await engine.offloadSegment('s', segment.baseOffset)).toBe(true);
  }
  return { dir, engine, written };
}

describe('journal reads', () => {
  it('stops once maxBytes is spent without reading on for the next frame', async () => {
    const copies = new MemoryCopies();
    const { engine, written } = await offloadedShard(copies);
    // Exactly the data of the first segment: the read must not touch the second one.
    const { batches } = await engine.read('s', 0, { maxBytes: FRAMES_PER_SEGMENT * DATA });
    expect(batches.map((b) => b.baseOffset)).toEqual([...Array(FRAMES_PER_SEGMENT).keys()]);
    expect(batches.map((b) => sha(b.data))).toEqual(
      written.slice(0, FRAMES_PER_SEGMENT).map((b) => sha(b.data)),
    );
    expect(copies.reads.every((r) => r.baseOffset === 0)).toBe(true);
  });

  it('checks every frame of an offloaded segment on every read, though this process wrote it', async () => {
    const copies = new MemoryCopies();
    const { engine, written } = await offloadedShard(copies);
    const first = await engine.read('s', 0, { maxBytes: 1 << 20 });
    expect(first.batches.length).toBeGreaterThan(FRAMES_PER_SEGMENT);
    // The copy goes bad after a good read: the next read must notice, not trust the first.
    const copy = copies.copies.get(0)!;
    const at = 3 * (DATA + 32) + 100;
    copy[at] = copy[at]! ^ 0xff;
    await expect(engine.read('s', 3, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    const upTo = await engine.read('s', 0, { maxBytes: 1 << 20 });
    expect(upTo.batches.map((b) => b.baseOffset)).toEqual([0, 1, 2]);
    expect(sha(upTo.batches[2]!.data)).toBe(sha(written[2]!.data));
  });

  it('returns data that stays valid after later reads', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', {});
    const written = Array.from({ length: 200 }, (_, i) => batch(16 * 1024, 1_000 + i));
    await Promise.all(written.map((b) => engine.append('s', [b])));
    const kept = [];
    let offset = 0;
    for (;;) {
      const { batches } = await engine.read('s', offset, { maxBytes: 1 << 20 });
      if (batches.length === 0) break;
      kept.push(...batches);
      offset = batches.at(-1)!.baseOffset + batches.at(-1)!.recordCount;
    }
    expect(kept.length).toBe(200);
    // Appends in flight together may land in any order: compare by content, after all the reads.
    expect(kept.map((b) => sha(b.data)).sort()).toEqual(written.map((b) => sha(b.data)).sort());
  });

  it('never serves a damaged frame this process did not write, however often it is asked for', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', {});
    for (let i = 0; i < 10; i++) await engine.append('s', [batch(DATA, 1_000 + i)]);
    await engine.close();
    const [log] = await segmentLogs(dir, 's');
    const bytes = await readFile(log!);
    const at = 5 * (DATA + 32) + 50;
    bytes[at] = bytes[at]! ^ 0xff;
    await writeFile(log!, bytes);
    const reopened = await open(dir);
    for (let i = 0; i < 3; i++) {
      const { batches } = await reopened.read('s', 0, { maxBytes: 1 << 20 });
      expect(batches.map((b) => b.baseOffset)).toEqual([0, 1, 2, 3, 4]);
      await expect(reopened.read('s', 5, { maxBytes: 1 << 20 })).rejects.toMatchObject({
        code: ErrorCode.Corrupt,
      });
    }
  });
});
