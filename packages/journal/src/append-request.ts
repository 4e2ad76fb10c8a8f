import {
  ErrorCode,
  RobustMQError,
  type AppendOptions,
  type AppendResult,
  type RecordBatch,
} from '@robustmq/core';
import { FRAME_HEADER_BYTES, frameBytes, writeFrame, writeFrameHeader } from './frame.js';

/** Records in one append: the indexes hold offsets relative to a segment in 32 bits. */
const MAX_APPEND_RECORDS = 2 ** 31 - 1;
/** Bytes in one append, framing included: byte positions in a segment are 32-bit. */
const MAX_APPEND_BYTES = 2 ** 30;
/** Frames of small appends are carved from slabs of this size rather than allocated one by one. */
const SLAB_BYTES = 1024 * 1024;
/** Appends framed to more bytes than this get a buffer of their own. */
const MAX_SLAB_PIECE = SLAB_BYTES / 8;
/**
 * Batches with more data than this are written from the caller's own buffer, after a header of
 * their own, rather than copied behind their header: the copy would cost more than the extra
 * piece of the vectored write.
 */
const MAX_COPIED_DATA = 4096;

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
  /**
   * The frame's header, followed by its data unless {@link data} holds them: filled in up front,
   * sealed (offset and checksum) when the writer assigns offsets.
   */
  frame: Buffer;
  /** The caller's data, written right after {@link frame}; null when copied into it. */
  data: Uint8Array | null;
  /** Offset of the batch relative to the append's first offset. */
  relative: number;
  recordCount: number;
  maxTimestamp: number;
  /** Bytes of the frame. */
  bytes: number;
}

/**
 * One call to `append`, framed up front: each batch gets a header (small batches are copied behind
 * it), and only their offsets and checksums are filled in when the writer assigns offsets. Larger
 * batches are written straight from the caller's buffers, which the caller leaves unchanged until
 * the append settles (see `Journal.append`).
 */
export interface AppendRequest {
  /** What to write, in order: the frames, as one vectored write. */
  pieces: Uint8Array[];
  batches: FramedBatch[];
  bytes: number;
  records: number;
  /**
   * The offset the append must get to be stored (see `AppendOptions.expectedOffset`), checked by
   * the writer when it gives out offsets; undefined for an unconditional append.
   */
  expectedOffset: number | undefined;
  baseOffset: number;
  endOffset: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, message);
}

/** Checks every batch and the options (nothing is written unless all pass) and frames the batches. */
export function frameAppend(
  shard: string,
  batches: unknown,
  maxBatchBytes: number,
  options?: AppendOptions,
): AppendRequest {
  const expectedOffset: unknown = options?.expectedOffset;
  if (
    expectedOffset !== undefined &&
    (typeof expectedOffset !== 'number' || !Number.isSafeInteger(expectedOffset) || expectedOffset < 0)
  ) {
    const shown = typeof expectedOffset === 'number' ? String(expectedOffset) : typeof expectedOffset;
    throw invalid(`expectedOffset must be a non-negative integer, got ${shown}`);
  }
  if (!Array.isArray(batches)) throw invalid('batches must be an array');
  if (batches.length === 0) throw invalid('append needs at least one batch');
  let bytes = 0;
  let records = 0;
  for (let i = 0; i < batches.length; i++) {
    const value: unknown = batches[i];
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

  // Room for the headers, and for the data copied behind them (each frame kept 8-byte aligned).
  let framedBytes = 0;
  for (const batch of batches as RecordBatch[]) {
    framedBytes +=
      FRAME_HEADER_BYTES + (batch.data.length <= MAX_COPIED_DATA ? (batch.data.length + 7) & ~7 : 0);
  }
  const frames = framesBuffer(framedBytes);
  const framed: FramedBatch[] = [];
  const pieces: Uint8Array[] = [];
  let at = 0;
  let relative = 0;
  for (const batch of batches as RecordBatch[]) {
    const data = batch.data;
    let frame: Buffer;
    let apart: Uint8Array | null = null;
    if (data.length <= MAX_COPIED_DATA) {
      const end = writeFrame(frames, at, batch.recordCount, batch.maxTimestamp, data);
      frame = frames.subarray(at, end);
      at += (end - at + 7) & ~7;
      pieces.push(frame);
    } else {
      frame = frames.subarray(at, at + FRAME_HEADER_BYTES);
      writeFrameHeader(frame, 0, data.length, batch.recordCount, batch.maxTimestamp);
      at += FRAME_HEADER_BYTES;
      apart = data;
      pieces.push(frame, data);
    }
    framed.push({
      frame,
      data: apart,
      relative,
      recordCount: batch.recordCount,
      maxTimestamp: batch.maxTimestamp,
      bytes: frameBytes(data.length),
    });
    relative += batch.recordCount;
  }
  return {
    pieces,
    batches: framed,
    bytes,
    records,
    expectedOffset,
    baseOffset: -1,
    endOffset: -1,
    resolve: () => undefined,
    reject: () => undefined,
  };
}
