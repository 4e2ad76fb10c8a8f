import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Counter, Gauge, Histogram, MetricLabels, Metrics } from '@robustmq/core';
import { afterEach } from 'vitest';

/** Temporary directories under os.tmpdir(), removed after each test. */
export function useTempDirs(): () => Promise<string> {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'robustmq-rocksdb-test-'));
    dirs.push(dir);
    return dir;
  };
}

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

/** A small seeded generator (mulberry32), so a failing case can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
