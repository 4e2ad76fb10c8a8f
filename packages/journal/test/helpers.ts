import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import type {
  Counter,
  Gauge,
  Histogram,
  Metrics,
  RecordBatch,
  StorageEngine,
  StoredBatch,
} from '@robustmq/core';
import { frameBytes } from '../src/frame.js';
import {
  openJournal,
  type Journal,
  type JournalOptions,
  type OffloadedSegmentReader,
  type SealedSegment,
} from '../src/index.js';
import { shardDirName } from '../src/shard-dir.js';

const dirs: string[] = [];
const engines: StorageEngine[] = [];

afterEach(async () => {
  await Promise.allSettled(engines.splice(0).map((e) => e.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A temp dir removed after the test. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'robustmq-journal-'));
  dirs.push(dir);
  return dir;
}

/** Opens a journal that is closed after the test (closing twice is fine). */
export async function open(dir: string, options: Partial<JournalOptions> = {}): Promise<Journal> {
  const journal = await openJournal({ dir, ...options });
  engines.push(journal);
  return journal;
}

/**
 * Copies a journal's directory while the engine is running: the copy is what a crash at this
 * moment leaves behind (every acknowledged write is in the files; no clean-shutdown marker).
 */
export async function crashCopy(dir: string): Promise<string> {
  const copy = await tempDir();
  await cp(dir, copy, { recursive: true });
  return copy;
}

export function batch(bytes: number, maxTimestamp = 1_000, recordCount = 1): RecordBatch {
  return { recordCount, maxTimestamp, data: randomBytes(bytes) };
}

/**
 * A journal in a temp dir with shard `s` (64 MiB segments, no retention) holding `count` batches
 * whose sizes cycle through `sizes`, and the batches as appended.
 */
export async function shardOfSizes(sizes: readonly number[], count: number) {
  const dir = await tempDir();
  const engine = await open(dir);
  await engine.createShard('s', { retentionMs: null, segmentBytes: 64 * 1024 * 1024 });
  const written: RecordBatch[] = [];
  for (let i = 0; i < count; i++) {
    const b = batch(sizes[i % sizes.length] as number, 1_000 + i);
    written.push(b);
    await engine.append('s', [b]);
  }
  return { dir, engine, written };
}

export function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every batch from the log start to the next offset. */
export async function readAll(engine: StorageEngine, shard: string): Promise<StoredBatch[]> {
  const info = await engine.shardInfo(shard);
  const out: StoredBatch[] = [];
  let offset = info.logStartOffset;
  while (offset < info.nextOffset) {
    const { batches } = await engine.read(shard, offset, { maxBytes: 1024 * 1024 });
    const last = batches[batches.length - 1];
    if (last === undefined) throw new Error(`no batches at ${offset}`);
    out.push(...batches);
    offset = last.baseOffset + last.recordCount;
  }
  return out;
}

export function shardDir(dir: string, shard: string): string {
  return join(dir, 'shards', shardDirName(shard));
}

/** Segment log files of a shard, oldest first. */
export async function segmentLogs(dir: string, shard: string): Promise<string[]> {
  const names = await readdir(shardDir(dir, shard));
  return names
    .filter((n) => n.endsWith('.log'))
    .sort()
    .map((n) => join(shardDir(dir, shard), n));
}

/**
 * Flips one bit in the data of batch `index` of a closed shard whose batches have data lengths
 * cycling through `sizes` (as {@link shardOfSizes} writes them), all in its first segment.
 */
export async function damageBatch(
  dir: string,
  shard: string,
  sizes: readonly number[],
  index: number,
): Promise<void> {
  const [log] = await segmentLogs(dir, shard);
  const bytes = await readFile(log!);
  let at = 0;
  for (let i = 0; i < index; i++) at += frameBytes(sizes[i % sizes.length] as number);
  const damaged = at + 32 + 5;
  bytes[damaged] = bytes[damaged]! ^ 0x04;
  await writeFile(log!, bytes);
}

/** A Metrics registry that keeps counter totals, to count fsyncs. */
export class CountingMetrics implements Metrics {
  readonly totals = new Map<string, number>();

  counter(options: { name: string }): Counter {
    return {
      inc: (_labels, value = 1) => {
        this.totals.set(options.name, (this.totals.get(options.name) ?? 0) + value);
      },
    };
  }

  gauge(): Gauge {
    return { set() {}, inc() {}, dec() {} };
  }

  histogram(): Histogram {
    return { observe() {} };
  }

  total(name: string): number {
    return this.totals.get(name) ?? 0;
  }
}

/**
 * A logger that keeps every line's message and fields, to check what recovery reported. A child
 * keeps its lines in its parent's list, with its bindings among the fields.
 */
export class RecordingLogger {
  readonly lines: { level: string; message: string; fields: Record<string, unknown> }[];
  readonly #bindings: Record<string, unknown>;

  constructor(
    lines: { level: string; message: string; fields: Record<string, unknown> }[] = [],
    bindings: Record<string, unknown> = {},
  ) {
    this.lines = lines;
    this.#bindings = bindings;
  }

  #log(level: string) {
    return (fieldsOrMessage: object | string, message?: string) => {
      if (typeof fieldsOrMessage === 'string')
        this.lines.push({ level, message: fieldsOrMessage, fields: { ...this.#bindings } });
      else
        this.lines.push({
          level,
          message: message ?? '',
          fields: { ...this.#bindings, ...(fieldsOrMessage as Record<string, unknown>) },
        });
    };
  }

  trace = this.#log('trace');
  debug = this.#log('debug');
  info = this.#log('info');
  warn = this.#log('warn');
  error = this.#log('error');
  fatal = this.#log('fatal');
  child(bindings: Record<string, unknown> = {}): RecordingLogger {
    return new RecordingLogger(this.lines, { ...this.#bindings, ...bindings });
  }

  count(text: string): number {
    return this.lines.filter((l) => l.message.includes(text)).length;
  }
}

/**
 * Copies of offloaded segments in a directory of their own, which can be made unreachable, or
 * made to hold the next read until it is let go.
 */
export class GatedStore implements OffloadedSegmentReader {
  readonly dir: string;
  down = false;
  /** Reads asked for, so far. */
  reads = 0;
  #held: { arrived: () => void; release: Promise<void> } | null = null;

  constructor(dir: string) {
    this.dir = dir;
  }

  path(segment: Pick<SealedSegment, 'baseOffset'>): string {
    return join(this.dir, `${segment.baseOffset}.log`);
  }

  /** Holds the next read until the returned function is called; resolves `arrived` when it comes. */
  hold(): { arrived: Promise<void>; release: () => void } {
    let release = (): void => {};
    let arrived = (): void => {};
    const arrival = new Promise<void>((resolve) => (arrived = resolve));
    this.#held = { arrived, release: new Promise<void>((resolve) => (release = resolve)) };
    return { arrived: arrival, release };
  }

  async read(segment: SealedSegment, position: number, length: number): Promise<Uint8Array> {
    this.reads++;
    const held = this.#held;
    if (held !== null) {
      this.#held = null;
      held.arrived();
      await held.release;
    }
    if (this.down) throw new RobustMQError(ErrorCode.Unavailable, 'the copies cannot be reached');
    return (await readFile(this.path(segment))).subarray(position, position + length);
  }
}
