import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, type RecordBatch } from '@robustmq/core';
import type { OffloadedSegmentReader, SealedSegment } from '../src/index.js';
import { batch, open, readAll, sha, shardDir, tempDir } from './helpers.js';

/**
 * Offloaded segments' logs kept in a directory of their own (what a bucket is to tiering), with a
 * count of reads, so the tests see which reads left the local disk.
 */
class CopyStore implements OffloadedSegmentReader {
  readonly dir: string;
  reads = 0;
  /** The segment each read was for, as the journal described it. */
  readonly askedFor: SealedSegment[] = [];

  constructor(dir: string) {
    this.dir = dir;
  }

  #path(segment: Pick<SealedSegment, 'shard' | 'baseOffset'>): string {
    return join(this.dir, `${encodeURIComponent(segment.shard)}-${segment.baseOffset}.log`);
  }

  async keep(segment: SealedSegment): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await copyFile(segment.logPath, this.#path(segment));
  }

  async read(segment: SealedSegment, position: number, length: number): Promise<Uint8Array> {
    this.reads++;
    this.askedFor.push(segment);
    const bytes = await readFile(this.#path(segment));
    return bytes.subarray(position, position + length);
  }
}

async function fill(
  engine: Awaited<ReturnType<typeof open>>,
  shard: string,
  count: number,
): Promise<RecordBatch[]> {
  await engine.createShard(shard, { segmentBytes: 4096, retentionMs: null });
  const written: RecordBatch[] = [];
  for (let i = 0; i < count; i++) {
    const b = batch(400, 1_000 + i * 10, 2);
    written.push(b);
    await engine.append(shard, [b]);
  }
  return written;
}

async function offloadAll(
  engine: Awaited<ReturnType<typeof open>>,
  store: CopyStore,
  shard: string,
): Promise<SealedSegment[]> {
  const sealed = await engine.sealedSegments(shard);
  for (const segment of sealed) {
    await store.keep(segment);
    expect(await engine.offloadSegment(shard, segment.baseOffset)).toBe(true);
  }
  return sealed;
}

describe('journal offloading hooks', () => {
  it('tells when a segment is sealed and lists sealed segments with their extents', async () => {
    const dir = await tempDir();
    const sealedEvents: SealedSegment[] = [];
    const engine = await open(dir, { onSegmentSealed: (s) => sealedEvents.push(s) });
    await fill(engine, 'a/b', 60);
    const sealed = await engine.sealedSegments('a/b');
    expect(sealed.length).toBeGreaterThan(4);
    expect(sealedEvents).toEqual(sealed);
    for (const [i, segment] of sealed.entries()) {
      expect(segment).toMatchObject({ shard: 'a/b', offloaded: false, damaged: false });
      if (i + 1 < sealed.length) expect(segment.endOffset).toBe(sealed[i + 1]!.baseOffset);
      expect(segment.logPath.startsWith(shardDir(dir, 'a/b'))).toBe(true);
    }
    expect(sealed.at(-1)!.endOffset).toBeLessThan((await engine.shardInfo('a/b')).nextOffset);
    expect(sealed[0]!.baseOffset).toBe(0);
    expect(sealed.at(-1)!.maxTimestamp).toBe(1_000 + (sealed.at(-1)!.endOffset / 2 - 1) * 10);
  });

  it('drops an offloaded log locally, keeps its indexes, and reads it through the reader', async () => {
    const dir = await tempDir();
    const store = new CopyStore(await tempDir());
    const engine = await open(dir, { offloadedReader: store });
    const written = await fill(engine, 's', 40);
    const before = await engine.shardInfo('s');
    const sealed = await offloadAll(engine, store, 's');
    expect(await engine.offloadSegment('s', sealed[0]!.baseOffset)).toBe(false);
    expect(await engine.offloadSegment('s', before.nextOffset)).toBe(false);
    expect(await engine.offloadSegment('s', 12345)).toBe(false);

    const files = await readdir(shardDir(dir, 's'));
    expect(files.filter((f) => f.endsWith('.log'))).toHaveLength(1);
    expect(files.filter((f) => f.endsWith('.offloaded'))).toHaveLength(sealed.length);
    expect(files.filter((f) => f.endsWith('.index'))).toHaveLength(sealed.length);
    expect((await engine.sealedSegments('s')).every((s) => s.offloaded)).toBe(true);
    expect(await engine.shardInfo('s')).toEqual(before);

    const back = await readAll(engine, 's');
    expect(back.map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
    expect(store.reads).toBeGreaterThan(0);
    expect(await engine.offsetForTimestamp('s', 1_000 + 7 * 10)).toBe(14);
  });

  it('keeps offloaded segments across a reopen, and needs the reader to read them', async () => {
    const dir = await tempDir();
    const store = new CopyStore(await tempDir());
    let engine = await open(dir, { offloadedReader: store });
    const written = await fill(engine, 's', 40);
    const sealed = await offloadAll(engine, store, 's');
    await engine.close();

    engine = await open(dir, { offloadedReader: store });
    expect(await engine.sealedSegments('s')).toEqual(sealed.map((s) => ({ ...s, offloaded: true })));
    expect((await readAll(engine, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
    await engine.close();

    engine = await open(dir);
    const failure = await engine.read('s', 0, { maxBytes: 100 }).catch((e: unknown) => e);
    expect(isRobustMQError(failure, ErrorCode.Unavailable)).toBe(true);
    await engine.append(
      's',
      Array.from({ length: 12 }, () => batch(400)),
    );
    const local = (await engine.sealedSegments('s')).find((s) => !s.offloaded)!;
    const refused = await engine.offloadSegment('s', local.baseOffset).catch((e: unknown) => e);
    expect(isRobustMQError(refused, ErrorCode.InvalidArgument)).toBe(true);
    const last = sealed.at(-1)!.endOffset;
    expect((await engine.read('s', last, { maxBytes: 100 })).batches[0]?.baseOffset).toBe(last);
  });

  it('describes each offloaded segment to the reader with its own extent, after a reopen too', async () => {
    const dir = await tempDir();
    const store = new CopyStore(await tempDir());
    let engine = await open(dir, { offloadedReader: store });
    await fill(engine, 's', 40);
    const sealed = await offloadAll(engine, store, 's');
    const expected = sealed.map((s) => ({ ...s, offloaded: true }));
    await readAll(engine, 's');
    expect(new Set(store.askedFor.map((s) => JSON.stringify(s)))).toEqual(
      new Set(expected.map((s) => JSON.stringify(s))),
    );
    await engine.close();

    store.askedFor.length = 0;
    engine = await open(dir, { offloadedReader: store });
    await readAll(engine, 's');
    expect(new Set(store.askedFor.map((s) => JSON.stringify(s)))).toEqual(
      new Set(expected.map((s) => JSON.stringify(s))),
    );
  });

  it('rebuilds missing index files of an offloaded segment through the reader', async () => {
    const dir = await tempDir();
    const store = new CopyStore(await tempDir());
    let engine = await open(dir, { offloadedReader: store });
    const written = await fill(engine, 's', 40);
    const sealed = await offloadAll(engine, store, 's');
    await engine.close();
    const stem = join(shardDir(dir, 's'), String(sealed[1]!.baseOffset).padStart(20, '0'));
    await rm(`${stem}.index`);
    await writeFile(`${stem}.timeindex`, Buffer.alloc(5));
    engine = await open(dir, { offloadedReader: store });
    expect((await readAll(engine, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
    expect((await readFile(`${stem}.index`)).length % 8).toBe(0);
  });

  it('keeps the local log when an offload was cut short by a crash', async () => {
    const dir = await tempDir();
    const store = new CopyStore(await tempDir());
    let engine = await open(dir, { offloadedReader: store });
    const written = await fill(engine, 's', 40);
    const [first] = await offloadAll(engine, store, 's');
    await engine.close();
    // As if the process died after writing the marker and before removing the log.
    await copyFile(join(store.dir, `s-${first!.baseOffset}.log`), first!.logPath);

    engine = await open(dir, { offloadedReader: store });
    const [again] = await engine.sealedSegments('s');
    expect(again).toMatchObject({ baseOffset: first!.baseOffset, offloaded: false });
    const stem = first!.logPath.replace(/\.log$/, '');
    await expect(readFile(`${stem}.offloaded`)).rejects.toThrow(/ENOENT/);
    store.reads = 0;
    const back = await engine.read('s', 0, { maxBytes: 1 });
    expect(sha(back.batches[0]!.data)).toBe(sha(written[0]!.data));
    expect(store.reads).toBe(0);
  });

  it('drops offloaded segments with retention and deleteBefore, counting their size', async () => {
    const dir = await tempDir();
    const store = new CopyStore(await tempDir());
    const engine = await open(dir, { offloadedReader: store });
    await fill(engine, 's', 60);
    const sealed = await offloadAll(engine, store, 's');
    const info = await engine.shardInfo('s');
    // What stays after the two oldest segments go is exactly the limit: both go, the third stays.
    await engine.updateShardConfig('s', {
      retentionBytes: info.sizeBytes - sealed[0]!.size - sealed[1]!.size,
    });
    await engine.enforceRetention(Date.now());
    expect((await engine.sealedSegments('s'))[0]!.baseOffset).toBe(sealed[2]!.baseOffset);
    expect(await engine.deleteBefore('s', sealed[3]!.baseOffset)).toBe(sealed[3]!.baseOffset);
    const left = await engine.sealedSegments('s');
    expect(left[0]!.baseOffset).toBe(sealed[3]!.baseOffset);
    const files = await readdir(shardDir(dir, 's'));
    expect(files.filter((f) => f.endsWith('.offloaded'))).toHaveLength(left.length);
    expect(files.filter((f) => f.endsWith('.index'))).toHaveLength(left.length);
  });
});
