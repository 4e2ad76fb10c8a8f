import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type {
  Counter,
  Gauge,
  Histogram,
  LogFn,
  Logger,
  MetricLabels,
  Metrics,
  StorageEngine,
} from '@robustmq/core';
import { afterEach } from 'vitest';
import { openTieredStorage, type TieredStorage, type TieredStorageOptions } from '../src/index.js';
import type { LocalS3 } from './local-s3.js';

/** Metrics that remember counter increments by name and labels, for asserting on them. */
export function recordingMetrics(): Metrics & { count(name: string, labels?: MetricLabels): number } {
  const counts = new Map<string, number>();
  const keyOf = (name: string, labels: MetricLabels | undefined) => `${name} ${JSON.stringify(labels ?? {})}`;
  const ignore = () => {};
  return {
    counter: ({ name }): Counter => ({
      inc: (labels, value = 1) =>
        counts.set(keyOf(name, labels), (counts.get(keyOf(name, labels)) ?? 0) + value),
    }),
    gauge: (): Gauge => ({ set: ignore, inc: ignore, dec: ignore }),
    histogram: (): Histogram => ({ observe: ignore }),
    count: (name, labels) => counts.get(keyOf(name, labels)) ?? 0,
  };
}

/** One line a {@link RecordingLogger} kept. */
export interface LoggedLine {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every line (its children's too), to check what the engine reported. */
export class RecordingLogger implements Logger {
  readonly lines: LoggedLine[];
  readonly #bindings: Record<string, unknown>;

  constructor(lines: LoggedLine[] = [], bindings: Record<string, unknown> = {}) {
    this.lines = lines;
    this.#bindings = bindings;
  }

  #log(level: string): LogFn {
    return (fieldsOrMessage: object | string, message?: string) => {
      const fields = typeof fieldsOrMessage === 'string' ? {} : fieldsOrMessage;
      const text = typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? '');
      this.lines.push({ level, message: text, fields: { ...this.#bindings, ...fields } });
    };
  }

  trace = this.#log('trace');
  debug = this.#log('debug');
  info = this.#log('info');
  warn = this.#log('warn');
  error = this.#log('error');
  fatal = this.#log('fatal');

  child(bindings: Record<string, unknown>): Logger {
    return new RecordingLogger(this.lines, { ...this.#bindings, ...bindings });
  }

  at(level: string): LoggedLine[] {
    return this.lines.filter((line) => line.level === level);
  }
}

/** The object-key prefix an engine over `dir` uses in tests: one per data dir. */
export function prefixFor(dir: string): string {
  return `${basename(dir)}/`;
}

/** Temp dirs and engines made by a test, cleaned up after it. */
export function useEngines(s3: () => LocalS3) {
  const dirs: string[] = [];
  const engines: StorageEngine[] = [];
  afterEach(async () => {
    await Promise.allSettled(engines.splice(0).map((e) => e.close()));
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  return {
    tempDir: async (): Promise<string> => {
      const dir = await mkdtemp(join(tmpdir(), 'robustmq-tiered-'));
      dirs.push(dir);
      return dir;
    },
    /** Opens a tiered engine over `dir` against the local S3 server; closed after the test. */
    open: async (dir: string, options: Partial<TieredStorageOptions> = {}): Promise<TieredStorage> => {
      const engine = await openTieredStorage({ ...s3().settings(prefixFor(dir)), dir, ...options });
      engines.push(engine);
      return engine;
    },
  };
}

export function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The `.log` files of a shard directory in the journal under `dir`, by name. */
export async function localLogs(dir: string, shardDirName: string): Promise<string[]> {
  const names = await readdir(join(dir, 'shards', shardDirName));
  return names.filter((n) => n.endsWith('.log')).sort();
}

/** Base offsets in sorted object keys `.../<20 digits>.log`. */
export function basesOf(keys: readonly string[]): number[] {
  return keys.map((k) => Number(/(\d{20})\.log$/.exec(k)?.[1] ?? NaN));
}
