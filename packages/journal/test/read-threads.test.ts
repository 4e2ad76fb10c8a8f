import { spawn } from 'node:child_process';
import { open as fsOpen, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '@robustmq/core';
import { DEFAULT_SETTINGS } from '../src/config.js';
import { frameBytes, sealFrame, writeFrame } from '../src/frame.js';
import { ReadThreads } from '../src/read-threads.js';
import { ReadMemory } from '../src/read-memory.js';
import { scanFrames } from '../src/scan.js';
import { damageBatch, open, sha, shardOfSizes, tempDir } from './helpers.js';

/** Uneven frame sizes, so the pieces the threads take end anywhere. */
const SIZES = [70_000, 3_000, 130_000, 17, 65_536, 1_200_000, 40_000, 900];
const BATCHES = 64;
const MiB = 1024 * 1024;

function sharedBuffer(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}

/** The journal's threads (shared by the process), once they take reads. */
async function threadsUp(): Promise<ReadThreads> {
  const threads = ReadThreads.shared(DEFAULT_SETTINGS.readThreads);
  await vi.waitFor(() => expect(threads.ready()).toBe(true), { timeout: 10_000 });
  return threads;
}

function longShard() {
  return shardOfSizes(SIZES, BATCHES);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('reads on the read threads', () => {
  it('return every byte written, as views of the lent shared memory, read and checked by the threads', async () => {
    const { engine, written } = await longShard();
    await threadsUp();
    const threadReads = vi.spyOn(ReadThreads.prototype, 'read');
    const into = sharedBuffer(40 * MiB);
    for (const maxBytes of [9 * MiB, 300 * 1024, 1]) {
      let offset = 0;
      const read = [];
      while (offset < BATCHES) {
        const { batches } = await engine.read('s', offset, { maxBytes, into });
        for (const b of batches) expect(b.data.buffer).toBe(into.buffer);
        read.push(...batches.map((b) => sha(b.data)));
        offset = (batches.at(-1)?.baseOffset ?? offset) + 1;
      }
      expect(read).toEqual(written.map((b) => sha(b.data)));
    }
    expect(threadReads).toHaveBeenCalled();
  });

  it('serve the frames before a damaged one, then report it corrupt, as reads on the engine thread do', async () => {
    const { dir, engine, written } = await longShard();
    await engine.close();
    await damageBatch(dir, 's', SIZES, 40);

    const reopened = await open(dir);
    await threadsUp();
    const threadReads = vi.spyOn(ReadThreads.prototype, 'read');
    const into = sharedBuffer(40 * MiB);
    const { batches } = await reopened.read('s', 0, { maxBytes: 32 * MiB, into });
    expect(threadReads).toHaveBeenCalled();
    expect(batches.map((b) => sha(b.data))).toEqual(written.slice(0, 40).map((b) => sha(b.data)));
    await expect(reopened.read('s', 40, { maxBytes: MiB, into })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    const after = await reopened.read('s', 41, { maxBytes: 32 * MiB, into });
    expect(after.batches.map((b) => sha(b.data))).toEqual(written.slice(41).map((b) => sha(b.data)));
  });

  it('check every frame even where the threads are told to split a read off a frame boundary', async () => {
    // 600 frames of 1 KiB in a file, scanned with split positions that are not frame starts.
    const dir = await tempDir();
    const path = `${dir}/log`;
    const data = Array.from({ length: 600 }, (_, i) => Buffer.alloc(1024, i & 0xff));
    const frames = Buffer.alloc(600 * frameBytes(1024));
    let at = 0;
    data.forEach((d, i) => {
      const start = at;
      at = writeFrame(frames, at, 1, 1_000, d);
      sealFrame(frames, start, i);
    });
    // One flipped byte in frame 400, in the middle of a piece.
    const damaged = 400 * frameBytes(1024) + 100;
    frames[damaged] = frames[damaged]! ^ 0x01;
    await writeFile(path, frames);
    const threads = await threadsUp();
    const handle = await fsOpen(path, 'r');
    try {
      const taken: number[] = [];
      const result = await scanFrames(
        handle,
        {
          from: 0,
          to: frames.length,
          expectedBase: 0,
          readAhead: frames.length,
          verifyAll: false,
          memory: new ReadMemory(sharedBuffer(frames.length)),
          threads: { threads, frameStartAtOrBefore: (position) => position - 77 },
        },
        () => 'take',
        (header) => taken.push(header.baseOffset),
      );
      expect(result).toMatchObject({ kind: 'bad', reason: 'checksum mismatch', nextOffset: 400 });
      expect(taken).toEqual([...Array(400).keys()]);
    } finally {
      await handle.close();
    }
  });

  it('keep a script alive while they read for it, and let it exit once they are idle', async () => {
    const dir = await tempDir();
    const journalUrl = new URL('../dist/index.js', import.meta.url).href;
    const script = `
      import { openJournal } from ${JSON.stringify(journalUrl)};
      const journal = await openJournal({ dir: ${JSON.stringify(dir)} });
      await journal.createShard('s');
      for (let i = 0; i < 64; i++) {
        await journal.append('s', [{ recordCount: 1, maxTimestamp: 1, data: new Uint8Array(16384).fill(i) }]);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      const into = Buffer.from(new SharedArrayBuffer(4 * 1024 * 1024));
      const { batches } = await journal.read('s', 0, { maxBytes: 2 * 1024 * 1024, into });
      console.log(batches.length, batches[63].data[0]);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 20_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    // The journal was never closed: the threads alone must not hold the process.
    expect(code).toBe(0);
    expect(out.trim()).toBe('64 63');
  });

  it('finish a long read whose segment indexes another read pushes out of the index cache meanwhile', async () => {
    const dir = await tempDir();
    let engine = await open(dir);
    await engine.createShard('s', { segmentBytes: 10 * MiB, retentionMs: null });
    const written = [];
    for (let i = 0; i < 21; i++) {
      const b = { recordCount: 1, maxTimestamp: i, data: Buffer.alloc(MiB - 100, i) };
      written.push(b);
      await engine.append('s', [b]);
    }
    await engine.close();
    // An index cache with room for one segment's indexes: loading another's unloads the first.
    engine = await open(dir, { indexCacheBytes: 1 });
    const [, second] = await engine.sealedSegments('s');
    await threadsUp();
    const { value: read } = Object.getOwnPropertyDescriptor(ReadThreads.prototype, 'read') as {
      value: ReadThreads['read'];
    };
    let pushedOut = false;
    vi.spyOn(ReadThreads.prototype, 'read').mockImplementation(async function (this: ReadThreads, ...args) {
      if (!pushedOut) {
        pushedOut = true;
        await engine.read('s', second!.baseOffset, { maxBytes: 1 });
      }
      return read.apply(this, args);
    });
    const { batches } = await engine.read('s', 0, { maxBytes: 9 * MiB, into: sharedBuffer(10 * MiB) });
    expect(pushedOut).toBe(true);
    expect(batches.length).toBeGreaterThan(7);
    expect(batches.map((b) => sha(b.data))).toEqual(written.slice(0, batches.length).map((b) => sha(b.data)));
  });
});

describe('read threads that cannot start', () => {
  it('are not started again, and refuse reads at once, so reads stay on the engine thread', async () => {
    const threads = new ReadThreads(
      2,
      new URL('data:text/javascript,throw new Error("no read thread here")'),
    );
    expect(threads.ready()).toBe(false);
    // The read handed to a thread as it failed gets the thread's error; later ones, without any
    // thread started again, the pool's.
    await expect(threads.read(0, new SharedArrayBuffer(16), 0, 16, 0)).rejects.toThrow('no read thread here');
    expect(threads.ready()).toBe(false);
    await expect(threads.read(0, new SharedArrayBuffer(16), 0, 16, 0)).rejects.toThrow(
      'journal read threads could not start: no read thread here',
    );
  });
});
