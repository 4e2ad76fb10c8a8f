/**
 * Kafka record batches, magic 2: the header, CRC-32C, whole-batch encode and decode, and the
 * in-place edits a broker makes (base offset, partition leader epoch) that the CRC does not cover.
 */
import { crc32c } from '@node-rs/crc32';
import { compress, Compression, compressReady, decompress } from './compression.js';
import { readVarint, varintSize, writeVarint } from './varint.js';

/** Bytes before the records: baseOffset .. recordCount. */
export const RECORD_BATCH_HEADER_SIZE = 61;
/** Bytes that precede the length-covered part: baseOffset and batchLength. */
export const LOG_OVERHEAD = 12;
/** The CRC covers the batch from the attributes to the end. */
const CRC_START = 21;
const MAGIC_OFFSET = 16;

const ATTR_COMPRESSION = 0x07;
const ATTR_TIMESTAMP_TYPE = 0x08;
const ATTR_TRANSACTIONAL = 0x10;
const ATTR_CONTROL = 0x20;

/** CreateTime (set by the producer) or LogAppendTime (set by the broker). */
export const TimestampType = { createTime: 0, logAppendTime: 1 } as const;
export type TimestampType = (typeof TimestampType)[keyof typeof TimestampType];

/** Why bytes are not a valid record batch. */
export type RecordBatchErrorReason =
  | 'truncated'
  | 'corrupt'
  | 'unsupported-magic'
  | 'unsupported-compression'
  /** The records do not add up to the count in the header. */
  | 'miscounted';

/** Bytes that are not a valid magic-2 record batch. */
export class RecordBatchError extends Error {
  constructor(
    readonly reason: RecordBatchErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'RecordBatchError';
  }
}

/** The fixed-size header of a record batch. */
export interface RecordBatchHeader {
  baseOffset: number;
  /** Bytes after the batchLength field: the whole batch is `batchLength + 12` bytes. */
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  /** CRC-32C as stored (unsigned). */
  crc: number;
  attributes: number;
  compression: Compression;
  timestampType: TimestampType;
  transactional: boolean;
  /** A control batch: a transaction marker. */
  control: boolean;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  /** -1 when the producer is not idempotent. */
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  /** Records in the batch, as stored in its header. */
  recordCount: number;
}

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** One record of a decoded batch, with absolute offset and timestamp. */
export interface KafkaRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface DecodedRecordBatch extends RecordBatchHeader {
  records: KafkaRecord[];
}

/** A record to encode; strings are written as UTF-8. */
export interface RecordInput {
  key?: Uint8Array | string | null;
  value: Uint8Array | string | null;
  headers?: ReadonlyArray<{ key: string; value: Uint8Array | string | null }>;
  /** Milliseconds since the epoch; defaults to now. */
  timestamp?: number;
}

export interface RecordBatchInput {
  records: readonly RecordInput[];
  baseOffset?: number;
  /** Defaults to -1, as producers send it. */
  partitionLeaderEpoch?: number;
  compression?: Compression;
  timestampType?: TimestampType;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
  control?: boolean;
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The total size of the batch starting at `offset`, or null if fewer than 12 bytes remain. */
export function batchSizeAt(buf: Uint8Array, offset = 0): number | null {
  if (buf.length - offset < LOG_OVERHEAD) return null;
  return view(buf).getInt32(offset + 8) + LOG_OVERHEAD;
}

/**
 * Reads the header of the batch at the start of `batch`. Throws a {@link RecordBatchError} when
 * the bytes are short, the magic is not 2 or the length is impossible; it does not check the CRC.
 */
export function readBatchHeader(batch: Uint8Array): RecordBatchHeader {
  if (batch.length < RECORD_BATCH_HEADER_SIZE) {
    throw new RecordBatchError(
      'truncated',
      `record batch of ${batch.length} bytes is shorter than its header`,
    );
  }
  const dv = view(batch);
  const magic = dv.getInt8(MAGIC_OFFSET);
  if (magic !== 2) throw new RecordBatchError('unsupported-magic', `record batch magic ${magic}, expected 2`);
  const batchLength = dv.getInt32(8);
  if (batchLength < RECORD_BATCH_HEADER_SIZE - LOG_OVERHEAD) {
    throw new RecordBatchError('corrupt', `record batch length ${batchLength} is below the header size`);
  }
  const attributes = dv.getInt16(21);
  const compression = attributes & ATTR_COMPRESSION;
  if (compression > 4) {
    throw new RecordBatchError('unsupported-compression', `unknown compression codec ${compression}`);
  }
  return {
    baseOffset: Number(dv.getBigInt64(0)),
    batchLength,
    partitionLeaderEpoch: dv.getInt32(12),
    magic,
    crc: dv.getUint32(17),
    attributes,
    compression: compression as Compression,
    timestampType: attributes & ATTR_TIMESTAMP_TYPE ? 1 : 0,
    transactional: (attributes & ATTR_TRANSACTIONAL) !== 0,
    control: (attributes & ATTR_CONTROL) !== 0,
    lastOffsetDelta: dv.getInt32(23),
    baseTimestamp: Number(dv.getBigInt64(27)),
    maxTimestamp: Number(dv.getBigInt64(35)),
    producerId: dv.getBigInt64(43),
    producerEpoch: dv.getInt16(51),
    baseSequence: dv.getInt32(53),
    recordCount: dv.getInt32(57),
  };
}

/** A CRC-32C function. `@node-rs/crc32`'s is the default; a caller may pass a faster one. */
export type Crc32cFunction = (data: Uint8Array) => number;

const defaultCrc32c: Crc32cFunction = (data) => crc32c(data);

/** The CRC-32C a batch should carry: over the attributes to the end. */
export function computeBatchCrc(batch: Uint8Array, checksum: Crc32cFunction = defaultCrc32c): number {
  return checksum(batch.subarray(CRC_START)) >>> 0;
}

/** Whether the stored CRC of the (whole) batch matches its bytes. */
export function verifyBatchCrc(batch: Uint8Array, checksum: Crc32cFunction = defaultCrc32c): boolean {
  return (
    batch.length >= RECORD_BATCH_HEADER_SIZE && view(batch).getUint32(17) === computeBatchCrc(batch, checksum)
  );
}

/**
 * Splits concatenated batches (a Produce `records` field, a Fetch response, a log segment) into
 * whole batches, as views of `records`. `remainder` counts trailing bytes that do not form a whole
 * batch: a Fetch may end with one cut short; a Produce must not.
 */
export function splitBatches(records: Uint8Array): { batches: Buffer[]; remainder: number } {
  const buf = asBuffer(records);
  const batches: Buffer[] = [];
  let at = 0;
  for (;;) {
    const size = batchSizeAt(buf, at);
    if (size === null || size < RECORD_BATCH_HEADER_SIZE || at + size > buf.length) break;
    batches.push(buf.subarray(at, at + size));
    at += size;
  }
  return { batches, remainder: buf.length - at };
}

/**
 * The records of an uncompressed batch, counted by walking their length prefixes (nothing else is
 * read); null when the lengths do not fill the batch exactly. Compressed batches cannot be counted
 * without decompressing: null too.
 */
export function countRecords(batch: Uint8Array): number | null {
  const header = readBatchHeader(batch);
  const end = header.batchLength + LOG_OVERHEAD;
  if (header.compression !== Compression.none || end > batch.length) return null;
  return countRecordsIn(batch, RECORD_BATCH_HEADER_SIZE, end);
}

/** Records between `at` and `end`, by their length prefixes; null when they do not fill it exactly. */
function countRecordsIn(bytes: Uint8Array, at: number, end: number): number | null {
  let count = 0;
  try {
    while (at < end) {
      let length: number;
      [length, at] = readVarint(bytes, at);
      if (length < 1 || at + length > end) return null;
      at += length;
      count++;
    }
  } catch {
    return null;
  }
  return count;
}

/**
 * The whole batch with its records compressed by `codec` instead (a topic whose
 * `compression.type` is not the producer's): header fields kept, CRC recomputed. The records are
 * counted against the header; a {@link RecordBatchError} says what is wrong with them. `codec`'s
 * encoder must be ready (`compressionReady`), since this does not yield.
 */
export function recompressBatch(
  batch: Uint8Array,
  codec: Compression,
  maxDecompressedBytes?: number,
): Buffer {
  const header = readBatchHeader(batch);
  const size = header.batchLength + LOG_OVERHEAD;
  if (batch.length < size) throw new RecordBatchError('truncated', 'record batch is cut short');
  let records: Buffer;
  try {
    records = decompress(
      header.compression,
      batch.subarray(RECORD_BATCH_HEADER_SIZE, size),
      maxDecompressedBytes,
    );
  } catch (error) {
    throw new RecordBatchError('corrupt', `cannot decompress record batch: ${(error as Error).message}`);
  }
  if (countRecordsIn(records, 0, records.length) !== header.recordCount) {
    throw new RecordBatchError(
      'miscounted',
      `the batch's records do not add up to its record count ${header.recordCount}`,
    );
  }
  const body = codec === Compression.none ? records : compressReady(codec, records);
  const out = Buffer.allocUnsafe(RECORD_BATCH_HEADER_SIZE + body.length);
  out.set(batch.subarray(0, RECORD_BATCH_HEADER_SIZE));
  body.copy(out, RECORD_BATCH_HEADER_SIZE);
  const dv = view(out);
  dv.setInt32(8, out.length - LOG_OVERHEAD);
  dv.setInt16(21, (header.attributes & ~ATTR_COMPRESSION) | codec);
  dv.setUint32(17, computeBatchCrc(out));
  return out;
}

/** Overwrites the base offset of the batch in place; the CRC stays valid. */
export function setBaseOffset(batch: Uint8Array, baseOffset: number): void {
  view(batch).setBigInt64(0, BigInt(baseOffset));
}

/** Overwrites the partition leader epoch of the batch in place; the CRC stays valid. */
export function setPartitionLeaderEpoch(batch: Uint8Array, epoch: number): void {
  view(batch).setInt32(12, epoch);
}

/**
 * Marks the batch LogAppendTime with `timestamp` as its max timestamp (a topic with
 * `message.timestamp.type=LogAppendTime`), recomputing the CRC. Compressed bytes are untouched.
 */
export function setLogAppendTime(batch: Uint8Array, timestamp: number): void {
  const dv = view(batch);
  dv.setInt16(21, dv.getInt16(21) | ATTR_TIMESTAMP_TYPE);
  dv.setBigInt64(35, BigInt(timestamp));
  dv.setUint32(17, computeBatchCrc(batch));
}

function toBytes(value: Uint8Array | string): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : asBuffer(value);
}

function encodeRecords(records: readonly RecordInput[], baseTimestamp: number, timestamps: number[]): Buffer {
  const encoded: Buffer[] = [];
  let total = 0;
  records.forEach((record, index) => {
    const key = record.key == null ? null : toBytes(record.key);
    const value = record.value === null ? null : toBytes(record.value);
    const headers = (record.headers ?? []).map((h) => ({
      key: Buffer.from(h.key, 'utf8'),
      value: h.value === null ? null : toBytes(h.value),
    }));
    const timestampDelta = timestamps[index]! - baseTimestamp;
    let body = 1 + varintSize(timestampDelta) + varintSize(index);
    body += key === null ? varintSize(-1) : varintSize(key.length) + key.length;
    body += value === null ? varintSize(-1) : varintSize(value.length) + value.length;
    body += varintSize(headers.length);
    for (const h of headers) {
      body += varintSize(h.key.length) + h.key.length;
      body += h.value === null ? varintSize(-1) : varintSize(h.value.length) + h.value.length;
    }
    const out = Buffer.allocUnsafe(varintSize(body) + body);
    let at = writeVarint(out, 0, body);
    out[at++] = 0;
    at = writeVarint(out, at, timestampDelta);
    at = writeVarint(out, at, index);
    const writeBytes = (bytes: Buffer | null) => {
      if (bytes === null) {
        at = writeVarint(out, at, -1);
      } else {
        at = writeVarint(out, at, bytes.length);
        at += bytes.copy(out, at);
      }
    };
    writeBytes(key);
    writeBytes(value);
    at = writeVarint(out, at, headers.length);
    for (const h of headers) {
      writeBytes(h.key);
      writeBytes(h.value);
    }
    encoded.push(out);
    total += out.length;
  });
  return Buffer.concat(encoded, total);
}

/** Encodes records into one batch with a valid CRC; compression as asked (default none). */
export async function encodeRecordBatch(input: RecordBatchInput): Promise<Buffer> {
  if (input.records.length === 0) throw new RangeError('a record batch needs at least one record');
  const now = Date.now();
  const timestamps = input.records.map((r) => r.timestamp ?? now);
  const baseTimestamp = timestamps[0]!;
  const maxTimestamp = Math.max(...timestamps);
  const codec = input.compression ?? Compression.none;
  const raw = encodeRecords(input.records, baseTimestamp, timestamps);
  const body = codec === Compression.none ? raw : await compress(codec, raw);
  const batch = Buffer.alloc(RECORD_BATCH_HEADER_SIZE + body.length);
  const dv = view(batch);
  let attributes = codec;
  if (input.timestampType === TimestampType.logAppendTime) attributes |= ATTR_TIMESTAMP_TYPE;
  if (input.transactional) attributes |= ATTR_TRANSACTIONAL;
  if (input.control) attributes |= ATTR_CONTROL;
  dv.setBigInt64(0, BigInt(input.baseOffset ?? 0));
  dv.setInt32(8, batch.length - LOG_OVERHEAD);
  dv.setInt32(12, input.partitionLeaderEpoch ?? -1);
  dv.setInt8(16, 2);
  dv.setInt16(21, attributes);
  dv.setInt32(23, input.records.length - 1);
  dv.setBigInt64(27, BigInt(baseTimestamp));
  dv.setBigInt64(35, BigInt(maxTimestamp));
  dv.setBigInt64(43, input.producerId ?? -1n);
  dv.setInt16(51, input.producerEpoch ?? -1);
  dv.setInt32(53, input.baseSequence ?? -1);
  dv.setInt32(57, input.records.length);
  body.copy(batch, RECORD_BATCH_HEADER_SIZE);
  dv.setUint32(17, computeBatchCrc(batch));
  return batch;
}

function readRecord(buf: Buffer, at: number, header: RecordBatchHeader): [KafkaRecord, number] {
  let length: number;
  [length, at] = readVarint(buf, at);
  const end = at + length;
  if (length < 0 || end > buf.length) throw new RecordBatchError('corrupt', 'record runs past the batch');
  at += 1; // record attributes: unused
  let timestampDelta: number, offsetDelta: number, count: number;
  [timestampDelta, at] = readVarint(buf, at);
  [offsetDelta, at] = readVarint(buf, at);
  const readBytes = (): Buffer | null => {
    let size: number;
    [size, at] = readVarint(buf, at);
    if (size < 0) return null;
    if (at + size > end) throw new RecordBatchError('corrupt', 'record field runs past the record');
    const bytes = buf.subarray(at, at + size);
    at += size;
    return bytes;
  };
  const key = readBytes();
  const value = readBytes();
  [count, at] = readVarint(buf, at);
  if (count < 0) throw new RecordBatchError('corrupt', 'negative header count');
  const headers: RecordHeader[] = [];
  for (let i = 0; i < count; i++) {
    const headerKey = readBytes();
    if (headerKey === null) throw new RecordBatchError('corrupt', 'record header with a null key');
    headers.push({ key: headerKey.toString('utf8'), value: readBytes() });
  }
  if (at !== end) throw new RecordBatchError('corrupt', 'record length does not match its fields');
  const timestamp =
    header.timestampType === TimestampType.logAppendTime
      ? header.maxTimestamp
      : header.baseTimestamp + timestampDelta;
  return [{ offset: header.baseOffset + offsetDelta, timestamp, key, value, headers }, end];
}

/**
 * Decodes one whole batch with its records (decompressing as needed). Checks the CRC unless
 * `verifyCrc` is false; throws a {@link RecordBatchError} for anything malformed, and for records
 * that would decompress to more than `maxDecompressedBytes` (default `DEFAULT_MAX_DECOMPRESSED_BYTES`,
 * 128 MiB).
 */
export function decodeRecordBatch(
  batch: Uint8Array,
  options: { verifyCrc?: boolean; maxDecompressedBytes?: number } = {},
): DecodedRecordBatch {
  const header = readBatchHeader(batch);
  const size = header.batchLength + LOG_OVERHEAD;
  if (batch.length < size) throw new RecordBatchError('truncated', 'record batch is cut short');
  const whole = asBuffer(batch).subarray(0, size);
  if (options.verifyCrc !== false && !verifyBatchCrc(whole)) {
    throw new RecordBatchError('corrupt', 'record batch CRC does not match');
  }
  let body: Buffer;
  try {
    body = decompress(
      header.compression,
      whole.subarray(RECORD_BATCH_HEADER_SIZE),
      options.maxDecompressedBytes,
    );
  } catch (error) {
    throw new RecordBatchError('corrupt', `cannot decompress record batch: ${(error as Error).message}`);
  }
  const records: KafkaRecord[] = [];
  let at = 0;
  try {
    for (let i = 0; i < header.recordCount; i++) {
      let record: KafkaRecord;
      [record, at] = readRecord(body, at, header);
      records.push(record);
    }
  } catch (error) {
    if (error instanceof RecordBatchError) throw error;
    throw new RecordBatchError('corrupt', `malformed record: ${(error as Error).message}`);
  }
  if (at !== body.length) throw new RecordBatchError('corrupt', 'bytes left after the last record');
  return { ...header, records };
}

/** Decodes every whole batch in concatenated `records` (a Fetch response's records field). */
export function decodeRecordBatches(
  records: Uint8Array,
  options: { verifyCrc?: boolean; maxDecompressedBytes?: number } = {},
): DecodedRecordBatch[] {
  return splitBatches(records).batches.map((batch) => decodeRecordBatch(batch, options));
}
