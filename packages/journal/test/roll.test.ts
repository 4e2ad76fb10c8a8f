import { copyFile, open as openFile, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, type RecordBatch } from '@robustmq/core';
import type { FileHandle } from 'node:fs/promises';
import type { Journal, SealedSegment } from '../src/index.js';
import { Segment } from '../src/segment.js';
import { batch, crashCopy, open, readAll, RecordingLogger, sha, shardDir, tempDir } from './helpers.js';

/** 400-byte batches take 432 bytes on disk: 9 fit a segment of 4096 bytes. */
const PER_SEGMENT = 9;
/** The files of shard `s`'s first segment. */
const FIRST = '00000000000000000000';

afterEach(() => {
  vi.restoreAllMocks();
});

/** Holds every write of a segment's index files until `release` is called. */
function holdIndexWrites(): { held: Segment[]; release: () => void } {
  const { value: original } = Object.getOwnPropertyDescriptor(Segment.prototype, 'writeIndexes') as {
    value: Segment['writeIndexes'];
  };
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held: Segment[] = [];
  vi.spyOn(Segment.prototype, 'writeIndexes').mockImplementation(async function (this: Segment) {
    held.push(this);
    await gate;
    return original.call(this);
  });
  return { held, release };
}

/**
 * Whether `promise` settles within a few seconds: a call held until something else happens
 * (here, a held index write) does not, however fast the disk.
 */
async function settlesWhileHeld(promise: Promise<unknown>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const held = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), 3_000);
  });
  try {
    return await Promise.race([promise.then(() => true), held]);
  } finally {
    clearTimeout(timer);
  }
}

/** Appends `count` batches to shard `s` one after another (one roll for up to 17). */
async function appendBatches(engine: Journal, written: RecordBatch[], count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const b = batch(400, 1_000 + written.length);
    written.push(b);
    await engine.append('s', [b]);
  }
}

/** A journal with shard `s` in segments of 4096 bytes. */
async function journal(dir: string, options: Parameters<typeof open>[1] = {}): Promise<Journal> {
  const engine = await open(dir, options);
  await engine.createShard('s', { segmentBytes: 4096, retentionMs: null });
  return engine;
}

async function firstSegmentFiles(dir: string): Promise<string[]> {
  return (await readdir(shardDir(dir, 's'))).filter((name) => name.startsWith(FIRST)).sort();
}

describe('rolling a segment', () => {
  it('acknowledges appends to the next segment while the sealed one has its index files written', async () => {
    const dir = await tempDir();
    const told: SealedSegment[] = [];
    const engine = await journal(dir, { onSegmentSealed: (segment) => told.push(segment) });
    const written: RecordBatch[] = [];
    const hold = holdIndexWrites();
    let listed = false;
    let listing: Promise<SealedSegment[]>;
    try {
      expect(await settlesWhileHeld(appendBatches(engine, written, PER_SEGMENT + 6))).toBe(true);
      expect(hold.held.map((segment) => segment.baseOffset)).toEqual([0]);
      expect(told.map((segment) => segment.baseOffset)).toEqual([0]);
      // Listed only once its index files are written; served meanwhile from its indexes in memory.
      listing = engine.sealedSegments('s');
      void listing.then(() => {
        listed = true;
      });
      expect(await firstSegmentFiles(dir)).toEqual([`${FIRST}.log`]);
      expect((await readAll(engine, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
      expect(await engine.offsetForTimestamp('s', 1_000 + 4)).toBe(4);
      expect(listed).toBe(false);
    } finally {
      hold.release();
    }
    const sealed = await listing!;
    expect(sealed.map((s) => [s.baseOffset, s.endOffset])).toEqual([[0, PER_SEGMENT]]);
    expect(told).toEqual(sealed);
    expect(await firstSegmentFiles(dir)).toEqual([`${FIRST}.index`, `${FIRST}.log`, `${FIRST}.timeindex`]);
  });

  it('recovers every acknowledged record after a crash before or while the sealed segment’s index files were written', async () => {
    const dir = await tempDir();
    const engine = await journal(dir);
    const written: RecordBatch[] = [];
    const hold = holdIndexWrites();
    let crashed: string;
    try {
      expect(await settlesWhileHeld(appendBatches(engine, written, PER_SEGMENT + 6))).toBe(true);
      crashed = await crashCopy(dir);
    } finally {
      hold.release();
    }
    await engine.sealedSegments('s');
    vi.restoreAllMocks();
    const indexes = shardDir(dir, 's');
    const stem = (d: string) => join(shardDir(d, 's'), FIRST);
    const leftBehind: Record<string, (copy: string) => Promise<void>> = {
      'no index files': async () => {},
      'a temp file cut short': async (copy) => {
        await writeFile(`${stem(copy)}.index.tmp`, Buffer.alloc(5, 1));
      },
      'the offset index but no time index': async (copy) => {
        await copyFile(join(indexes, `${FIRST}.index`), `${stem(copy)}.index`);
      },
      'both, the time index torn': async (copy) => {
        await copyFile(join(indexes, `${FIRST}.index`), `${stem(copy)}.index`);
        await copyFile(join(indexes, `${FIRST}.timeindex`), `${stem(copy)}.timeindex`);
        await truncate(`${stem(copy)}.timeindex`, (await stat(`${stem(copy)}.timeindex`)).size - 5);
      },
    };
    for (const [what, leave] of Object.entries(leftBehind)) {
      const copy = await crashCopy(crashed!);
      await leave(copy);
      const logger = new RecordingLogger();
      const reopened = await open(copy, { logger });
      expect(
        (await readAll(reopened, 's')).map((b) => sha(b.data)),
        what,
      ).toEqual(written.map((b) => sha(b.data)));
      expect(logger.count('rebuilt missing or stale segment indexes'), what).toBe(1);
      expect(await reopened.offsetForTimestamp('s', 1_000 + 4), what).toBe(4);
      expect(await reopened.append('s', [batch(10)]), what).toEqual({
        baseOffset: written.length,
        lastOffset: written.length,
        logStartOffset: 0,
      });
      await reopened.close();
      expect(await firstSegmentFiles(copy), what).toEqual([
        `${FIRST}.index`,
        `${FIRST}.log`,
        `${FIRST}.timeindex`,
      ]);
    }
  });

  it('recovers every acknowledged record after a crash that left stale index files from a clean close', async () => {
    const dir = await tempDir();
    let engine = await journal(dir);
    const written: RecordBatch[] = [];
    await appendBatches(engine, written, 4);
    // The first segment is the active one at this clean close: its index files cover 4 batches.
    await engine.close();
    engine = await open(dir);
    const hold = holdIndexWrites();
    let crashed: string;
    try {
      expect(await settlesWhileHeld(appendBatches(engine, written, PER_SEGMENT + 2))).toBe(true);
      crashed = await crashCopy(dir);
    } finally {
      hold.release();
    }
    expect(await firstSegmentFiles(crashed!)).toEqual([
      `${FIRST}.index`,
      `${FIRST}.log`,
      `${FIRST}.timeindex`,
    ]);
    const logger = new RecordingLogger();
    const reopened = await open(crashed!, { logger });
    expect(logger.count('rebuilt missing or stale segment indexes')).toBe(1);
    expect((await readAll(reopened, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
    expect(await reopened.offsetForTimestamp('s', 1_000 + 7)).toBe(7);
  });

  it('lets deletion wait for a sealing under way, leaving no index files behind', async () => {
    const dir = await tempDir();
    const engine = await journal(dir);
    const written: RecordBatch[] = [];
    const hold = holdIndexWrites();
    let deleting: Promise<number>;
    try {
      expect(await settlesWhileHeld(appendBatches(engine, written, PER_SEGMENT + 6))).toBe(true);
      deleting = engine.deleteBefore('s', PER_SEGMENT + 1);
      // Removing the segment while its index files are still to be written would leave them behind.
      expect(await settlesWhileHeld(deleting)).toBe(false);
      expect(await firstSegmentFiles(dir)).toEqual([`${FIRST}.log`]);
    } finally {
      hold.release();
    }
    expect(await deleting!).toBe(PER_SEGMENT + 1);
    await engine.sealedSegments('s');
    expect(await firstSegmentFiles(dir)).toEqual([]);
    expect((await readAll(engine, 's')).map((b) => sha(b.data))).toEqual(
      written.slice(PER_SEGMENT + 1).map((b) => sha(b.data)),
    );
  });

  it('lets offloading and shard deletion wait for a sealing under way', async () => {
    const dir = await tempDir();
    const copies = await tempDir();
    const engine = await journal(dir, {
      offloadedReader: {
        read: async (segment, position, length) =>
          (await readFile(join(copies, `${segment.baseOffset}.log`))).subarray(position, position + length),
      },
    });
    await engine.createShard('gone', { segmentBytes: 4096 });
    const written: RecordBatch[] = [];
    const hold = holdIndexWrites();
    let offloading: Promise<boolean>;
    let deleting: Promise<void>;
    try {
      expect(await settlesWhileHeld(appendBatches(engine, written, PER_SEGMENT + 6))).toBe(true);
      const rolled = (async () => {
        for (let i = 0; i < PER_SEGMENT + 1; i++) await engine.append('gone', [batch(400)]);
      })();
      expect(await settlesWhileHeld(rolled)).toBe(true);
      await copyFile(join(shardDir(dir, 's'), `${FIRST}.log`), join(copies, '0.log'));
      offloading = engine.offloadSegment('s', 0);
      deleting = engine.deleteShard('gone');
      expect(await settlesWhileHeld(Promise.race([offloading, deleting]))).toBe(false);
    } finally {
      hold.release();
    }
    expect(await offloading!).toBe(true);
    await deleting!;
    await expect(engine.shardInfo('gone')).rejects.toMatchObject({ code: ErrorCode.NotFound });
    expect(await firstSegmentFiles(dir)).toEqual([
      `${FIRST}.index`,
      `${FIRST}.offloaded`,
      `${FIRST}.timeindex`,
    ]);
    await engine.close();

    const logger = new RecordingLogger();
    const reopened = await open(dir, {
      logger,
      offloadedReader: { read: () => Promise.resolve(new Uint8Array(0)) },
    });
    expect(logger.count('rebuilt missing or stale segment indexes')).toBe(0);
    expect(await reopened.listShards()).toEqual(['s']);
    expect((await reopened.shardInfo('s')).nextOffset).toBe(written.length);
  });

  it('writes the sealed segment’s index files before a close under way finishes', async () => {
    const dir = await tempDir();
    const engine = await journal(dir);
    const written: RecordBatch[] = [];
    const hold = holdIndexWrites();
    let closing: Promise<void>;
    try {
      expect(await settlesWhileHeld(appendBatches(engine, written, PER_SEGMENT + 6))).toBe(true);
      closing = engine.close();
    } finally {
      hold.release();
    }
    await closing!;
    expect(await firstSegmentFiles(dir)).toEqual([`${FIRST}.index`, `${FIRST}.log`, `${FIRST}.timeindex`]);
    const logger = new RecordingLogger();
    const reopened = await open(dir, { logger });
    expect(logger.count('rebuilt missing or stale segment indexes')).toBe(0);
    expect((await readAll(reopened, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
  });
});

describe('durability none', () => {
  it('flushes the active segment in the background as it fills, holding no append', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', { durability: 'none', segmentBytes: 256 * 1024 * 1024 });
    const probe = await openFile(join(dir, 'probe'), 'w');
    await probe.close();
    const prototype = Object.getPrototypeOf(probe) as FileHandle;
    const { value: original } = Object.getOwnPropertyDescriptor(prototype, 'datasync') as {
      value: FileHandle['datasync'];
    };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const datasync = vi.spyOn(prototype, 'datasync').mockImplementation(async function (this: FileHandle) {
      await gate;
      return original.call(this);
    });
    const written: RecordBatch[] = [];
    try {
      // 40 MiB, in appends of 1 MiB: a flush starts on the way, and is held.
      const appending = (async () => {
        for (let i = 0; i < 40; i++) {
          const b = batch(1024 * 1024, 1_000 + i);
          written.push(b);
          await engine.append('s', [b]);
        }
      })();
      expect(await settlesWhileHeld(appending)).toBe(true);
      // One flush at a time, however many bytes came after it.
      expect(datasync).toHaveBeenCalledTimes(1);
    } finally {
      release();
    }
    await engine.close();
    vi.restoreAllMocks();
    const reopened = await open(dir);
    expect((await readAll(reopened, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
  });
});
