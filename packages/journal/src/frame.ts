import { crc32c } from '@robustmq/crc32c';

/**
 * On-disk framing of one record batch in a segment file (all integers big-endian):
 *
 * | at | size | field |
 * | -- | ---- | ----- |
 * | 0  | 4 | data length in bytes |
 * | 4  | 4 | CRC32C of bytes 8 .. end of frame |
 * | 8  | 1 | magic, {@link FRAME_MAGIC} |
 * | 9  | 3 | reserved, zero |
 * | 12 | 8 | base offset (unsigned) |
 * | 20 | 4 | record count |
 * | 24 | 8 | max timestamp (IEEE 754 double) |
 * | 32 | n | data |
 *
 * The checksum covers the base offset, so a frame copied to the wrong place fails it too.
 */
export const FRAME_HEADER_BYTES = 32;
export const FRAME_MAGIC = 1;

/** Larger data lengths are never written, so reading one means the header is garbage. */
export const MAX_FRAME_DATA_BYTES = 1024 * 1024 * 1024;

const TWO_32 = 2 ** 32;

export interface FrameHeader {
  dataLength: number;
  crc: number;
  baseOffset: number;
  recordCount: number;
  maxTimestamp: number;
}

/** Bytes a batch of `dataLength` bytes occupies on disk. */
export function frameBytes(dataLength: number): number {
  return FRAME_HEADER_BYTES + dataLength;
}

/**
 * Writes a frame's header fields that do not depend on its position in the log, for data of
 * `dataLength` bytes. {@link sealFrame} fills in the base offset and checksum once the offset is
 * known.
 */
export function writeFrameHeader(
  target: Buffer,
  at: number,
  dataLength: number,
  recordCount: number,
  maxTimestamp: number,
): void {
  target.writeUInt32BE(dataLength, at);
  target.writeUInt32BE(0, at + 4);
  target.writeUInt32BE(FRAME_MAGIC * 0x1000000, at + 8);
  target.writeUInt32BE(recordCount, at + 20);
  target.writeDoubleBE(maxTimestamp, at + 24);
}

/** Writes a whole frame, header and data, into `target` at `at`; returns where it ends. */
export function writeFrame(
  target: Buffer,
  at: number,
  recordCount: number,
  maxTimestamp: number,
  data: Uint8Array,
): number {
  writeFrameHeader(target, at, data.length, recordCount, maxTimestamp);
  target.set(data, at + FRAME_HEADER_BYTES);
  return at + frameBytes(data.length);
}

/**
 * Stamps the base offset into a frame header written by {@link writeFrameHeader} and computes the
 * frame's checksum. The data follows the header in `target` unless given apart as `data` (a frame
 * written from two pieces): the checksum is the same either way.
 */
export function sealFrame(target: Buffer, at: number, baseOffset: number, data?: Uint8Array): void {
  target.writeUInt32BE(Math.floor(baseOffset / TWO_32), at + 12);
  target.writeUInt32BE(baseOffset >>> 0, at + 16);
  let crc: number;
  if (data === undefined) {
    crc = crc32c(target.subarray(at + 8, at + frameBytes(target.readUInt32BE(at))));
  } else {
    crc = crc32c(data, crc32c(target.subarray(at + 8, at + FRAME_HEADER_BYTES)));
  }
  target.writeUInt32BE(crc, at + 4);
}

/**
 * Parses the header at `at`, or returns null when it cannot be one (wrong magic, reserved bits
 * set, impossible values): torn or overwritten bytes.
 */
export function readFrameHeader(source: Buffer, at: number): FrameHeader | null {
  if (at + FRAME_HEADER_BYTES > source.length) return null;
  const dataLength = source.readUInt32BE(at);
  const magicAndReserved = source.readUInt32BE(at + 8);
  const recordCount = source.readUInt32BE(at + 20);
  const maxTimestamp = source.readDoubleBE(at + 24);
  if (
    magicAndReserved !== FRAME_MAGIC * 0x1000000 ||
    dataLength > MAX_FRAME_DATA_BYTES ||
    recordCount === 0 ||
    !Number.isFinite(maxTimestamp)
  ) {
    return null;
  }
  const high = source.readUInt32BE(at + 12);
  const baseOffset = high * TWO_32 + source.readUInt32BE(at + 16);
  if (!Number.isSafeInteger(baseOffset)) return null;
  return { dataLength, crc: source.readUInt32BE(at + 4), baseOffset, recordCount, maxTimestamp };
}

/** Whether the whole frame at `at` (which must be in `source`) matches its checksum. */
export function frameChecksumOk(source: Buffer, at: number, header: FrameHeader): boolean {
  const end = at + frameBytes(header.dataLength);
  return crc32c(source.subarray(at + 8, end)) === header.crc;
}
