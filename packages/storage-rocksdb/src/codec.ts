import { ErrorCode, RobustMQError, type RecordBatch } from '@robustmq/core';

/**
 * Encodings of the values stored under the keys of keys.ts. Numbers are float64 big-endian, which
 * holds every safe integer (offsets, byte counts) and every timestamp exactly.
 */

const BATCH_VERSION = 1;
/** version u8, record count u32, max timestamp f64. */
export const BATCH_HEADER_BYTES = 13;

const BLOCK_VERSION = 1;
/** version u8, end offset f64, batch count u32, max timestamp f64, bytes f64. */
const BLOCK_BYTES = 29;

function corrupt(what: string): RobustMQError {
  return new RobustMQError(ErrorCode.Corrupt, `stored ${what} is malformed`);
}

/** A stored batch value: a small header, then the batch's data byte for byte (a copy of it). */
export function encodeBatch(batch: RecordBatch): Buffer {
  const value = Buffer.allocUnsafe(BATCH_HEADER_BYTES + batch.data.length);
  value[0] = BATCH_VERSION;
  value.writeUInt32BE(batch.recordCount, 1);
  value.writeDoubleBE(batch.maxTimestamp, 5);
  value.set(batch.data, BATCH_HEADER_BYTES);
  return value;
}

/** The header of a stored batch, without touching its data. */
export interface BatchHeader {
  recordCount: number;
  maxTimestamp: number;
}

export function decodeBatchHeader(value: Buffer): BatchHeader {
  if (value.length < BATCH_HEADER_BYTES || value[0] !== BATCH_VERSION) throw corrupt('batch');
  const recordCount = value.readUInt32BE(1);
  if (recordCount < 1) throw corrupt('batch');
  return { recordCount, maxTimestamp: value.readDoubleBE(5) };
}

/** The batch in `value`; its data is a view of `value`, which the caller owns. */
export function decodeBatch(value: Buffer): RecordBatch {
  const header = decodeBatchHeader(value);
  return { ...header, data: value.subarray(BATCH_HEADER_BYTES) };
}

export function encodeNumber(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(8);
  buffer.writeDoubleBE(value);
  return buffer;
}

export function decodeNumber(value: Buffer | undefined, what: string): number {
  if (value === undefined || value.length !== 8) throw corrupt(what);
  const number = value.readDoubleBE();
  if (!Number.isSafeInteger(number) || number < 0) throw corrupt(what);
  return number;
}

export function encodeShardId(id: number): Buffer {
  const buffer = Buffer.allocUnsafe(4);
  buffer.writeUInt32BE(id);
  return buffer;
}

export function decodeShardId(value: Buffer): number {
  if (value.length !== 4) throw corrupt('shard id');
  return value.readUInt32BE();
}

/**
 * A block of the sparse time index: consecutive batches from `firstOffset` (the block's key) to
 * `endOffset`, their count, bytes and largest timestamp.
 */
export interface BlockSummary {
  firstOffset: number;
  endOffset: number;
  batches: number;
  bytes: number;
  maxTimestamp: number;
}

export function encodeBlock(block: BlockSummary): Buffer {
  const value = Buffer.allocUnsafe(BLOCK_BYTES);
  value[0] = BLOCK_VERSION;
  value.writeDoubleBE(block.endOffset, 1);
  value.writeUInt32BE(block.batches, 9);
  value.writeDoubleBE(block.maxTimestamp, 13);
  value.writeDoubleBE(block.bytes, 21);
  return value;
}

export function decodeBlock(firstOffset: number, value: Buffer): BlockSummary {
  if (value.length !== BLOCK_BYTES || value[0] !== BLOCK_VERSION) throw corrupt('time index block');
  const block = {
    firstOffset,
    endOffset: value.readDoubleBE(1),
    batches: value.readUInt32BE(9),
    maxTimestamp: value.readDoubleBE(13),
    bytes: value.readDoubleBE(21),
  };
  if (!(block.endOffset > firstOffset) || block.batches < 1 || !Number.isSafeInteger(block.bytes)) {
    throw corrupt('time index block');
  }
  return block;
}
