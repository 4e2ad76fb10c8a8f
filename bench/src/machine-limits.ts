/**
 * What this machine's disk and page cache give a single process, measured with plain synchronous
 * file calls and no engine in between: the yardsticks the engines are compared with.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, constants, fdatasyncSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface Throughput {
  bytes: number;
  seconds: number;
  bytesPerSecond: number;
}

export interface SyncWrites extends Throughput {
  writes: number;
  writesPerSecond: number;
  /** `O_DSYNC` when the platform has it, else a write followed by fdatasync each time. */
  method: 'O_DSYNC' | 'write+fdatasync';
}

export interface MachineLimits {
  /** Sequential 1 MiB writes with one fdatasync at the end, median of the passes. */
  sequentialWrite: Throughput;
  /** 16 KiB writes that each reach the disk before the next starts. */
  syncWrites: SyncWrites;
  /**
   * For each load the options name, writes of all the bytes its appenders have in flight at once,
   * each reaching the disk before the next starts: what a durable append path gets from appenders
   * that wait for their acknowledgement if it does no more than group them.
   */
  inFlightSyncWrites: SyncWrites[];
  /**
   * Reading back the file just written (so from the page cache) in 1 MiB reads, like `cat`, over
   * and over for at least `readSeconds`.
   */
  pageCacheRead: Throughput;
}

export interface MachineLimitOptions {
  /** A scratch directory on the disk the engines use. */
  dir: string;
  /** Size of the sequential file. */
  fileBytes: number;
  /** How long to keep up the synchronous writes. */
  syncSeconds: number;
  /** Passes of the sequential write and read; the median counts. */
  passes: number;
  /** Least time each read pass keeps reading the file, from its start again each time (0: once). */
  readSeconds?: number;
  /** Bytes a workload's appenders have in flight at once, one per load, for {@link MachineLimits.inFlightSyncWrites}. */
  inFlightBytes?: readonly number[];
}

const CHUNK_BYTES = 1024 * 1024;
const SYNC_WRITE_BYTES = 16 * 1024;

function throughput(bytes: number, seconds: number): Throughput {
  return { bytes, seconds, bytesPerSecond: bytes / seconds };
}

function median(samples: readonly Throughput[]): Throughput {
  const sorted = [...samples].sort((a, b) => a.bytesPerSecond - b.bytesPerSecond);
  return sorted[Math.floor(sorted.length / 2)] as Throughput;
}

function writeSequential(path: string, chunk: Uint8Array, bytes: number): Throughput {
  const started = performance.now();
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < bytes; written += chunk.length) writeSync(fd, chunk);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return throughput(bytes, (performance.now() - started) / 1000);
}

function readWhole(path: string, buffer: Uint8Array, seconds: number): Throughput {
  const started = performance.now();
  const enough = started + seconds * 1000;
  const fd = openSync(path, 'r');
  let bytes = 0;
  try {
    do {
      let position = 0;
      for (let n = readSync(fd, buffer, 0, buffer.length, position); n > 0;) {
        position += n;
        n = readSync(fd, buffer, 0, buffer.length, position);
      }
      bytes += position;
    } while (performance.now() < enough);
  } finally {
    closeSync(fd);
  }
  return throughput(bytes, (performance.now() - started) / 1000);
}

function writeSynchronously(path: string, chunk: Uint8Array, seconds: number): SyncWrites {
  const method = constants.O_DSYNC === undefined ? 'write+fdatasync' : 'O_DSYNC';
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_DSYNC ?? 0);
  const fd = openSync(path, flags);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let writes = 0;
  try {
    while (performance.now() < deadline) {
      writeSync(fd, chunk);
      if (method === 'write+fdatasync') fdatasyncSync(fd);
      writes++;
    }
  } finally {
    closeSync(fd);
  }
  const elapsed = (performance.now() - started) / 1000;
  return {
    ...throughput(writes * chunk.length, elapsed),
    writes,
    writesPerSecond: writes / elapsed,
    method,
  };
}

/** Measures the limits in `options.dir`, leaving nothing behind there. */
export function measureMachineLimits(options: MachineLimitOptions): MachineLimits {
  // Random bytes, so that nothing on the way (a compressing or deduplicating layer) can shortcut.
  const chunk = randomFillSync(new Uint8Array(CHUNK_BYTES));
  const sequentialPath = join(options.dir, 'sequential.dat');
  const syncPath = join(options.dir, 'sync.dat');
  try {
    const writes: Throughput[] = [];
    const reads: Throughput[] = [];
    for (let pass = 0; pass < options.passes; pass++) {
      rmSync(sequentialPath, { force: true });
      writes.push(writeSequential(sequentialPath, chunk, options.fileBytes));
      reads.push(readWhole(sequentialPath, new Uint8Array(CHUNK_BYTES), options.readSeconds ?? 0));
    }
    const syncWrites = writeSynchronously(syncPath, chunk.subarray(0, SYNC_WRITE_BYTES), options.syncSeconds);
    const inFlightSyncWrites = (options.inFlightBytes ?? []).map((bytes) =>
      writeSynchronously(syncPath, randomFillSync(new Uint8Array(bytes)), options.syncSeconds),
    );
    return {
      sequentialWrite: median(writes),
      syncWrites,
      inFlightSyncWrites,
      pageCacheRead: median(reads),
    };
  } finally {
    rmSync(sequentialPath, { force: true });
    rmSync(syncPath, { force: true });
  }
}
