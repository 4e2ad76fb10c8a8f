import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, type RecordBatch } from '@robustmq/core';
import type { Journal, SealedSegment } from '../src/index.js';
import { batch, GatedStore, open, readAll, sha, shardDir, tempDir } from './helpers.js';

/**
 * A closed journal whose shard `s` (2 records per batch, 18 records per segment) has its sealed
 * segments offloaded to `store`, and the index file of its second segment removed; reopened.
 */
async function offloadedWithoutIndex(store: GatedStore): Promise<{
  engine: Journal;
  written: RecordBatch[];
  second: SealedSegment;
}> {
  const dir = await tempDir();
  await mkdir(store.dir, { recursive: true });
  let engine = await open(dir, { offloadedReader: store });
  await engine.createShard('s', { segmentBytes: 4096, retentionMs: null });
  const written: RecordBatch[] = [];
  for (let i = 0; i < 40; i++) {
    const b = batch(400, 1_000 + i * 10, 2);
    written.push(b);
    await engine.append('s', [b]);
  }
  const sealed = await engine.sealedSegments('s');
  for (const segment of sealed) {
    await copyFile(segment.logPath, store.path(segment));
    expect(await engine.offloadSegment('s', segment.baseOffset)).toBe(true);
  }
  await engine.close();
  const second = sealed[1]!;
  await rm(join(shardDir(dir, 's'), `${String(second.baseOffset).padStart(20, '0')}.index`));
  engine = await open(dir, { offloadedReader: store });
  return { engine, written, second };
}

describe('index rebuilds of sealed segments', () => {
  it('keeps the extent of a segment whose index rebuild failed, and serves it once its copy is back', async () => {
    const store = new GatedStore(await tempDir());
    const { engine, written, second } = await offloadedWithoutIndex(store);
    const offset = second.baseOffset + 2;

    store.down = true;
    await expect(engine.read('s', offset, { maxBytes: 1 })).rejects.toMatchObject({
      code: ErrorCode.Unavailable,
    });
    expect((await engine.sealedSegments('s'))[1]).toMatchObject({
      endOffset: second.endOffset,
      size: second.size,
      maxTimestamp: second.maxTimestamp,
    });

    store.down = false;
    const { batches } = await engine.read('s', offset, { maxBytes: 1 });
    expect(batches[0]?.baseOffset).toBe(offset);
    expect(sha(batches[0]!.data)).toBe(sha(written[offset / 2]!.data));
    expect(await engine.offsetForTimestamp('s', second.maxTimestamp)).toBe(second.endOffset - 2);
    expect((await readAll(engine, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
  });

  it('serves a read that comes while the segment it reads has its indexes rebuilt', async () => {
    const store = new GatedStore(await tempDir());
    const { engine, written, second } = await offloadedWithoutIndex(store);
    const offset = second.baseOffset + 4;

    const held = store.hold();
    const first = engine.read('s', offset, { maxBytes: 1 });
    await held.arrived; // The rebuild is reading the segment's copy now.
    const during = engine.read('s', offset, { maxBytes: 1 });
    const timestamp = engine.offsetForTimestamp('s', written[offset / 2]!.maxTimestamp);
    held.release();

    for (const { batches } of await Promise.all([first, during])) {
      expect(batches[0]?.baseOffset).toBe(offset);
      expect(sha(batches[0]!.data)).toBe(sha(written[offset / 2]!.data));
    }
    expect(await timestamp).toBe(offset);
  });
});

/** Moves entry `entry` of an offset index file one byte on, where no frame starts. */
async function nudgeIndexEntry(path: string, entry: number): Promise<void> {
  const bytes = await readFile(path);
  expect(bytes.length / 8).toBeGreaterThan(entry + 1);
  bytes.writeUInt32BE(bytes.readUInt32BE(entry * 8 + 4) + 1, entry * 8 + 4);
  await writeFile(path, bytes);
}

/** Reads every offset of `written` (one record per batch, from offset 0) on its own. */
async function expectEachOffset(engine: Journal, shard: string, written: RecordBatch[]): Promise<void> {
  for (const [offset, b] of written.entries()) {
    const { batches } = await engine.read(shard, offset, { maxBytes: 1 });
    expect(batches[0]?.baseOffset, `offset ${offset}`).toBe(offset);
    expect(sha(batches[0]!.data), `offset ${offset}`).toBe(sha(b.data));
  }
}

describe('damaged offset index files', () => {
  it('serves every batch of a sealed segment whose index has an entry pointing at no frame', async () => {
    const dir = await tempDir();
    let engine = await open(dir, { indexIntervalBytes: 512 });
    await engine.createShard('i', { segmentBytes: 8192, retentionMs: null });
    const written: RecordBatch[] = [];
    for (let i = 0; i < 100; i++) {
      const b = batch(200, 100 + i);
      written.push(b);
      await engine.append('i', [b]);
    }
    await engine.close();
    const index = join(shardDir(dir, 'i'), `${'0'.padStart(20, '0')}.index`);
    await nudgeIndexEntry(index, 3);

    engine = await open(dir, { indexIntervalBytes: 512 });
    await expectEachOffset(engine, 'i', written);
    expect(await engine.offsetForTimestamp('i', 100 + 17)).toBe(17);
    await engine.close();

    // The rebuilt index was written back.
    engine = await open(dir, { indexIntervalBytes: 512 });
    await expectEachOffset(engine, 'i', written);
  });

  it('finds offsets by timestamp in a sealed segment whose index has an entry pointing at no frame', async () => {
    const dir = await tempDir();
    let engine = await open(dir, { indexIntervalBytes: 512 });
    await engine.createShard('i', { segmentBytes: 8192, retentionMs: null });
    for (let i = 0; i < 100; i++) await engine.append('i', [batch(200, 100 + i)]);
    await engine.close();
    await nudgeIndexEntry(join(shardDir(dir, 'i'), `${'0'.padStart(20, '0')}.index`), 3);

    engine = await open(dir, { indexIntervalBytes: 512 });
    for (let offset = 0; offset < 100; offset++) {
      expect(await engine.offsetForTimestamp('i', 100 + offset), `timestamp ${100 + offset}`).toBe(offset);
    }
  });

  it('serves every batch of the last segment whose index, loaded after a clean close, points at no frame', async () => {
    const dir = await tempDir();
    let engine = await open(dir, { indexIntervalBytes: 512 });
    await engine.createShard('i', { segmentBytes: 1024 * 1024, retentionMs: null });
    const written: RecordBatch[] = [];
    const append = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const b = batch(200, 100 + written.length);
        written.push(b);
        await engine.append('i', [b]);
      }
    };
    await append(100);
    await engine.close();
    await nudgeIndexEntry(join(shardDir(dir, 'i'), `${'0'.padStart(20, '0')}.index`), 5);

    engine = await open(dir, { indexIntervalBytes: 512 });
    await expectEachOffset(engine, 'i', written);
    await append(50);
    await expectEachOffset(engine, 'i', written);
    await engine.close();
    engine = await open(dir, { indexIntervalBytes: 512 });
    await expectEachOffset(engine, 'i', written);
  });
});

describe('offloaded segments whose copy is damaged', () => {
  it('keep their extent, so retention still drops them and the segments after them', async () => {
    const store = new GatedStore(await tempDir());
    const { engine, second } = await offloadedWithoutIndex(store);
    await writeFile(store.path(second), Buffer.alloc(second.size, 7));

    await expect(engine.read('s', second.baseOffset + 2, { maxBytes: 1 })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    expect((await engine.sealedSegments('s'))[1]).toMatchObject({
      endOffset: second.endOffset,
      size: second.size,
      maxTimestamp: second.maxTimestamp,
    });

    await engine.updateShardConfig('s', { retentionMs: 1 });
    await engine.enforceRetention(Date.now());
    const info = await engine.shardInfo('s');
    expect(info.logStartOffset).toBe(info.nextOffset);
    expect(await engine.sealedSegments('s')).toEqual([]);
  });

  it('are read from their copy once to check their index, not on every read', async () => {
    const dir = await tempDir();
    const store = new GatedStore(await tempDir());
    await mkdir(store.dir, { recursive: true });
    let engine = await open(dir, { offloadedReader: store, indexIntervalBytes: 512 });
    await engine.createShard('s', { segmentBytes: 8192, retentionMs: null });
    for (let i = 0; i < 40; i++) await engine.append('s', [batch(400, 1_000 + i)]);
    const [first] = await engine.sealedSegments('s');
    await copyFile(first!.logPath, store.path(first!));
    expect(await engine.offloadSegment('s', 0)).toBe(true);
    await engine.close();
    // The copy is damaged from its fourth frame on; the index files are sound.
    const copy = await readFile(store.path(first!));
    copy.fill(7, 3 * 432);
    await writeFile(store.path(first!), copy);

    engine = await open(dir, { offloadedReader: store, indexIntervalBytes: 512 });
    const corrupt = { code: ErrorCode.Corrupt };
    await expect(engine.read('s', 10, { maxBytes: 1 })).rejects.toMatchObject(corrupt);
    const afterFirst = store.reads;
    await expect(engine.read('s', 10, { maxBytes: 1 })).rejects.toMatchObject(corrupt);
    await expect(engine.read('s', 11, { maxBytes: 1 })).rejects.toMatchObject(corrupt);
    // One span each, from the rebuilt index's entry before the damage: no second rebuild.
    expect(store.reads - afterFirst).toBe(2);
    expect((await engine.read('s', 1, { maxBytes: 1 })).batches[0]?.baseOffset).toBe(1);
  });
});
