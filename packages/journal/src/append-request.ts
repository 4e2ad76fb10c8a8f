import { ErrorCode, RobustMQError, type AppendResult, type RecordBatch } from '@robustmq/core';
import { frameBytes, writeFrame } from './frame.js';

/** Records in one append: the indexes hold offsets relative to a segment in 32 bits. */
const MAX_APPEND_RECORDS = 2 ** 31 - 1;
/** Bytes in one append, framing included: byte positions in a segment are 32-bit. */
const MAX_APPEND_BYTES = 2 ** 30;
/** Frames of small appends are carved from slabs of this size rather than allocated one by one. */
const SLAB_BYTES = 1024 * 1024;
/** Appends framed to more bytes than this get a buffer of their own. */
const MAX_SLAB_PIECE = SLAB_BYTES / 8;

let slab = Buffer.allocUnsafe(0);
let slabUsed = 0;

/**
 * A buffer for the frames of one append. Small ones share slabs (one allocation for dozens of
 * appends, as Node's own pool does for small buffers): frames are never handed out, and a slab
 * is freed once no append framed into it is referenced any more.
 */
function framesBuffer(bytes: number): Buffer {
  if (bytes > MAX_SLAB_PIECE) return Buffer.allocUnsafe(bytes);
  if (slabUsed + bytes > slab.length) {
    slab = Buffer.allocUnsafe(SLAB_BYTES);
    slabUsed = 0;
  }
  const piece = slab.subarray(slabUsed, slabUsed + bytes);
  // Keep the next piece 8-byte aligned, as the checksum reads whole words fastest.
  slabUsed += (bytes + 7) & ~7;
  return piece;
}

export interface FramedBatch {
  /** Where the frame starts in {@link AppendRequest.frames}. */
  at: number;
  /** Offset of the batch relative to the append's first offset. */
  relative: number;
  recordCount: number;
  maxTimestamp: number;
  /** Bytes of the frame. */
  bytes: number;
}

/**
 * One call to `append`, framed up front: the batches are copied into one buffer of frames (so a
 * caller reusing its buffers cannot change what is written) and only their offsets and checksums
 * are filled in when the writer assigns offsets.
 */
export interface AppendRequest {
  frames: Buffer;
  batches: FramedBatch[];
  bytes: number;
  records: number;
  baseOffset: number;
  endOffset: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, message);
}

/** Checks every batch (nothing is written unless all pass) and frames them. */
export function frameAppend(shard: string, batches: unknown, maxBatchBytes: number): AppendRequest {
  if (!Array.isArray(batches)) throw invalid('batches must be an array');
  if (batches.length === 0) throw invalid('append needs at least one batch');
  let bytes = 0;
  let records = 0;
  for (const [i, value] of (batches as unknown[]).entries()) {
    if (value === null || typeof value !== 'object') throw invalid(`batch ${i} is not a record batch`);
    const batch = value as Partial<RecordBatch>;
    if (!(batch.data instanceof Uint8Array)) throw invalid(`batch ${i}: data must be a Uint8Array`);
    if (
      typeof batch.recordCount !== 'number' ||
      !Number.isInteger(batch.recordCount) ||
      batch.recordCount < 1 ||
      batch.recordCount > MAX_APPEND_RECORDS
    ) {
      throw invalid(
        `batch ${i}: recordCount must be an integer from 1 to ${MAX_APPEND_RECORDS}, got ${String(batch.recordCount)}`,
      );
    }
    if (typeof batch.maxTimestamp !== 'number' || !Number.isFinite(batch.maxTimestamp)) {
      throw invalid(`batch ${i}: maxTimestamp must be a finite number, got ${String(batch.maxTimestamp)}`);
    }
    if (batch.data.length > maxBatchBytes) {
      throw new RobustMQError(
        ErrorCode.TooLarge,
        `batch ${i} of shard ${shard} has ${batch.data.length} bytes; the limit is ${maxBatchBytes}`,
      );
    }
    bytes += frameBytes(batch.data.length);
    records += batch.recordCount;
  }
  if (records > MAX_APPEND_RECORDS)
    throw new RobustMQError(ErrorCode.TooLarge, `one append may hold at most ${MAX_APPEND_RECORDS} records`);
  if (bytes > MAX_APPEND_BYTES)
    throw new RobustMQError(ErrorCode.TooLarge, `one append may hold at most ${MAX_APPEND_BYTES} bytes`);

  const frames = framesBuffer(bytes);
  const framed: FramedBatch[] = [];
  let at = 0;
  let relative = 0;
  for (const batch of batches as RecordBatch[]) {
    const end = writeFrame(frames, at, batch.recordCount, batch.maxTimestamp, batch.data);
    framed.push({
      at,
      relative,
      recordCount: batch.recordCount,
      maxTimestamp: batch.maxTimestamp,
      bytes: end - at,
    });
    relative += batch.recordCount;
    at = end;
  }
  return {
    frames,
    batches: framed,
    bytes,
    records,
    baseOffset: -1,
    endOffset: -1,
    resolve: () => undefined,
    reject: () => undefined,
  };
}
