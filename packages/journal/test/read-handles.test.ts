import { open as openFile, readdir, readFile, readlink } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@robustmq/core';
import type { OffloadedSegmentReader, SealedSegment } from '../src/index.js';
import { batch, open, readAll, segmentLogs, sha, tempDir } from './helpers.js';

/** 400-byte batches make 432-byte frames: 9 of them fill a 4096-byte segment. */
const DATA = 400;
const FRAME = DATA + 32;
const FRAMES_PER_SEGMENT = 9;

/** Open file descriptors of this process (Linux). */
async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

/** Files under `dir` this process still holds open though they were removed. */
async function removedButOpen(dir: string): Promise<string[]> {
  const links = await Promise.all(
    (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  );
  return links.filter((link) => link.startsWith(dir) && link.endsWith('(deleted)'));
}

/** Flips one byte of a log file in place, as a disk fault would, while the engine runs. */
async function damage(path: string, at: number): Promise<void> {
  const handle = await openFile(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

describe('read handles of sealed segments', () => {
  it('still checks every frame read through a kept handle: damage after a read is caught', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', { segmentBytes: 4096, retentionMs: null });
    const written = [];
    for (let i = 0; i < 3 * FRAMES_PER_SEGMENT; i++) {
      const b = batch(DATA, 1_000 + i);
      written.push(b);
      await engine.append('s', [b]);
    }
    // Read the sealed first segment twice, so its handle is kept open between the reads.
    for (let pass = 0; pass < 2; pass++) {
      const { batches } = await engine.read('s', 0, { maxBytes: 1 << 20 });
      expect(batches.length).toBeGreaterThanOrEqual(FRAMES_PER_SEGMENT);
      expect(batches.slice(0, FRAMES_PER_SEGMENT).map((b) => sha(b.data))).toEqual(
        written.slice(0, FRAMES_PER_SEGMENT).map((b) => sha(b.data)),
      );
    }
    const [first] = await segmentLogs(dir, 's');
    await damage(first!, 4 * FRAME + 100);
    const { batches } = await engine.read('s', 0, { maxBytes: 1 << 20 });
    expect(batches.map((b) => b.baseOffset)).toEqual([0, 1, 2, 3]);
    await expect(engine.read('s', 4, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    // The next segment is untouched and still served.
    const next = await engine.read('s', FRAMES_PER_SEGMENT, { maxBytes: FRAME });
    expect(sha(next.batches[0]!.data)).toBe(sha(written[FRAMES_PER_SEGMENT]!.data));
  });

  it('keeps a bounded number of handles open, serves every segment, and closes them all on close', async () => {
    const dir = await tempDir();
    const before = await openFds();
    const engine = await open(dir);
    await engine.createShard('s', { segmentBytes: FRAME, retentionMs: null });
    // One frame per segment: 150 sealed segments, more than the engine keeps handles for.
    const written = [];
    for (let i = 0; i < 150; i++) {
      const b = batch(DATA, 1_000 + i);
      written.push(b);
      await engine.append('s', [b]);
    }
    for (let pass = 0; pass < 2; pass++) {
      const read = await readAll(engine, 's');
      expect(read.map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
      // Each read of a sealed segment may keep its handle, but only up to a bound.
      expect((await openFds()) - before).toBeLessThan(100);
    }
    await engine.close();
    expect(await openFds()).toBeLessThanOrEqual(before);
  });

  it('drops the kept handles of segments that deleteBefore removes', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', { segmentBytes: 4096, retentionMs: null });
    const written = [];
    for (let i = 0; i < 4 * FRAMES_PER_SEGMENT; i++) {
      const b = batch(DATA, 1_000 + i);
      written.push(b);
      await engine.append('s', [b]);
    }
    await readAll(engine, 's');
    const segmentsBefore = (await segmentLogs(dir, 's')).length;
    const start = await engine.deleteBefore('s', 2 * FRAMES_PER_SEGMENT);
    expect(start).toBe(2 * FRAMES_PER_SEGMENT);
    expect(await segmentLogs(dir, 's')).toHaveLength(segmentsBefore - 2);
    await expect(engine.read('s', 0, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: ErrorCode.OffsetOutOfRange,
    });
    const rest = await readAll(engine, 's');
    expect(rest.map((b) => sha(b.data))).toEqual(written.slice(start).map((b) => sha(b.data)));
    expect(await removedButOpen(dir)).toEqual([]);
  });

  it('drops the kept handle of a segment once it is offloaded, and reads its copy from then on', async () => {
    const copies = new Map<number, Buffer>();
    const reader: OffloadedSegmentReader = {
      read: (segment: SealedSegment, position: number, length: number) =>
        Promise.resolve(
          (copies.get(segment.baseOffset) ?? Buffer.alloc(0)).subarray(position, position + length),
        ),
    };
    const dir = await tempDir();
    const engine = await open(dir, { offloadedReader: reader });
    await engine.createShard('s', { segmentBytes: 4096, retentionMs: null });
    const written = [];
    for (let i = 0; i < 3 * FRAMES_PER_SEGMENT; i++) {
      const b = batch(DATA, 1_000 + i);
      written.push(b);
      await engine.append('s', [b]);
    }
    expect((await readAll(engine, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
    for (const segment of await engine.sealedSegments('s')) {
      copies.set(segment.baseOffset, await readFile(segment.logPath));
      expect(await engine.offloadSegment('s', segment.baseOffset)).toBe(true);
    }
    expect(await removedButOpen(dir)).toEqual([]);
    expect((await readAll(engine, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
  });
});

describe('framing of appends', () => {
  it('stores exactly the bytes given, for many small appends in flight and for large ones', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', { segmentBytes: 1 << 20, retentionMs: null });
    // Small appends share framing slabs; a 300 KiB batch gets a buffer of its own.
    const sizes = [...Array.from({ length: 300 }, (_, i) => 1 + ((i * 7919) % 9000)), 300 * 1024, 17];
    const written = sizes.map((n, i) => batch(n, 1_000 + i));
    const sent = written.map((b) => ({ ...b, data: Buffer.from(b.data) }));
    // A caller reusing its buffers once its append settled changes nothing that is stored (large
    // batches are written from the caller's buffer, so it is not reused sooner: see the README).
    const acks = sent.map((b) =>
      engine.append('s', [b]).then((result) => {
        (b.data as Buffer).fill(0);
        return result;
      }),
    );
    const results = await Promise.all(acks);
    const byOffset = new Map(results.map((r, i) => [r.baseOffset, sha(written[i]!.data)]));
    const read = await readAll(engine, 's');
    expect(read).toHaveLength(written.length);
    for (const b of read) expect(sha(b.data)).toBe(byOffset.get(b.baseOffset));
    await engine.close();
    const reopened = await open(dir);
    const again = await readAll(reopened, 's');
    for (const b of again) expect(sha(b.data)).toBe(byOffset.get(b.baseOffset));
  });
});
