/**
 * The storage workload: many appenders filling one shard with producer-sized batches, then one
 * reader taking the shard back from offset 0, each bounded by bytes and by time. The reader lends
 * every read the same buffer (`ReadOptions.into`), as a consumer that copies or sends the data out
 * before its next read does. One pass over a few hundred MiB lasts only tens of milliseconds, so
 * the reader starts over from offset 0 until `readSeconds` have passed, and the rate counts every
 * pass.
 */
import { randomFillSync } from 'node:crypto';
import type { RecordBatch, StorageEngine } from '@robustmq/core';

export interface WorkloadOptions {
  /** Size of one record; a batch holds as many whole records as fit in `batchBytes`. */
  recordBytes: number;
  batchBytes: number;
  /** Appends in flight at once, as from that many producers. */
  concurrency: number;
  /** Bytes of record data to append. */
  appendBytes: number;
  /** Longest time for each of the two phases; a phase past it stops early. */
  phaseSeconds: number;
  /** `maxBytes` of each read. */
  readMaxBytes: number;
  /** Least time the reader keeps reading, in whole passes over the shard (0: one pass). */
  readSeconds: number;
}

export interface PhaseResult {
  /** Bytes of record data appended or read (batch framing inside the engine not counted). */
  bytes: number;
  records: number;
  /** Calls made: appends or reads. */
  calls: number;
  /** Whole passes over the shard (reads only; 1 for appends). */
  passes: number;
  seconds: number;
  bytesPerSecond: number;
  recordsPerSecond: number;
  /** False when the phase ran out of time before its bytes. */
  complete: boolean;
}

export interface WorkloadResult {
  recordsPerBatch: number;
  append: PhaseResult;
  read: PhaseResult;
}

/**
 * Room the reader's buffer has beyond `readMaxBytes`: an engine reads a little more than the data
 * it returns (framing, the start of the batch the offset is in).
 */
export const READ_BUFFER_HEADROOM_BYTES = 1024 * 1024;

/** Distinct batches cycled through by the appenders; random bytes, so nothing compresses them. */
const BATCH_POOL = 64;

function phase(
  bytes: number,
  records: number,
  calls: number,
  started: number,
  complete: boolean,
  passes = 1,
): PhaseResult {
  const seconds = (performance.now() - started) / 1000;
  return {
    bytes,
    records,
    calls,
    passes,
    seconds,
    bytesPerSecond: bytes / seconds,
    recordsPerSecond: records / seconds,
    complete,
  };
}

function makeBatches(recordsPerBatch: number, recordBytes: number): RecordBatch[] {
  const maxTimestamp = Date.now();
  return Array.from({ length: BATCH_POOL }, () => ({
    recordCount: recordsPerBatch,
    maxTimestamp,
    data: randomFillSync(new Uint8Array(recordsPerBatch * recordBytes)),
  }));
}

async function appendPhase(
  engine: StorageEngine,
  shard: string,
  batches: readonly RecordBatch[],
  options: WorkloadOptions,
): Promise<PhaseResult> {
  const started = performance.now();
  const deadline = started + options.phaseSeconds * 1000;
  let bytes = 0;
  let records = 0;
  let calls = 0;
  const appender = async (): Promise<void> => {
    while (bytes < options.appendBytes && performance.now() < deadline) {
      const batch = batches[calls % batches.length] as RecordBatch;
      calls++;
      // Counted when sent: the phase ends when the last append in flight is acknowledged.
      bytes += batch.data.length;
      records += batch.recordCount;
      await engine.append(shard, [batch]);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, appender));
  return phase(bytes, records, calls, started, bytes >= options.appendBytes);
}

async function readPhase(
  engine: StorageEngine,
  shard: string,
  expected: PhaseResult,
  options: WorkloadOptions,
): Promise<PhaseResult> {
  const started = performance.now();
  const deadline = started + options.phaseSeconds * 1000;
  const enough = started + Math.min(options.readSeconds, options.phaseSeconds) * 1000;
  let bytes = 0;
  let records = 0;
  let calls = 0;
  let passes = 0;
  // Shared memory, so an engine may fill it off its thread (the journal's read threads do).
  const into = Buffer.from(new SharedArrayBuffer(options.readMaxBytes + READ_BUFFER_HEADROOM_BYTES));
  for (;;) {
    let offset = 0;
    let passBytes = 0;
    let passRecords = 0;
    while (offset < expected.records && performance.now() < deadline) {
      const { batches } = await engine.read(shard, offset, { maxBytes: options.readMaxBytes, into });
      calls++;
      for (const batch of batches) {
        passBytes += batch.data.length;
        passRecords += batch.recordCount;
        offset = batch.baseOffset + batch.recordCount;
      }
      if (batches.length === 0) break;
    }
    bytes += passBytes;
    records += passRecords;
    if (offset < expected.records) return phase(bytes, records, calls, started, passes > 0, passes);
    if (passBytes !== expected.bytes || passRecords !== expected.records) {
      throw new Error(
        `read back ${passRecords} records / ${passBytes} bytes, appended ${expected.records} / ${expected.bytes}`,
      );
    }
    passes++;
    if (performance.now() >= enough) return phase(bytes, records, calls, started, true, passes);
  }
}

/** Runs the workload on `shard`, which must exist and be empty. */
export async function runWorkload(
  engine: StorageEngine,
  shard: string,
  options: WorkloadOptions,
): Promise<WorkloadResult> {
  const recordsPerBatch = Math.max(1, Math.floor(options.batchBytes / options.recordBytes));
  const batches = makeBatches(recordsPerBatch, options.recordBytes);
  const append = await appendPhase(engine, shard, batches, options);
  const read = await readPhase(engine, shard, append, options);
  return { recordsPerBatch, append, read };
}
