/**
 * What one durable small write costs on this machine: 4 KiB written and fdatasync'ed, one after
 * the other, as a Raft log append with nothing batched would do.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LatencyHistogram } from './latency-histogram.js';

export interface FsyncCost {
  writeBytes: number;
  writes: number;
  seconds: number;
  writesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const WRITE_BYTES = 4096;

/** Appends 4 KiB + fdatasync in a loop for `seconds` in `dir`, leaving nothing behind. */
export function measureFsyncCost(dir: string, seconds: number): FsyncCost {
  const chunk = randomFillSync(new Uint8Array(WRITE_BYTES));
  const path = join(dir, 'fsync.dat');
  const histogram = new LatencyHistogram();
  const fd = openSync(path, 'w');
  const started = performance.now();
  const deadline = started + seconds * 1000;
  try {
    while (performance.now() < deadline) {
      const begun = process.hrtime.bigint();
      writeSync(fd, chunk);
      fdatasyncSync(fd);
      histogram.record(Number(process.hrtime.bigint() - begun));
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  const elapsed = (performance.now() - started) / 1000;
  return {
    writeBytes: WRITE_BYTES,
    writes: histogram.total,
    seconds: elapsed,
    writesPerSecond: histogram.total / elapsed,
    p50Ms: histogram.percentileMs(0.5) ?? 0,
    p99Ms: histogram.percentileMs(0.99) ?? 0,
  };
}
