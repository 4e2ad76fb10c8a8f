import { crc32c } from '@robustmq/crc32c';
import { FRAME_HEADER_BYTES, FRAME_MAGIC, MAX_FRAME_DATA_BYTES } from './frame.js';

/**
 * Checking a run of frames with one CRC32C over all their bytes instead of one per frame.
 *
 * CRC32C is linear, so the checksum of the whole run follows from the checksum each frame stores
 * (of its bytes 8 .. end) and the 8 bytes before it (length and checksum): it is computed from the
 * headers in a few operations per frame and compared with one native pass over the run, which is
 * much faster than a native call per frame for frames of a few KiB. A frame whose bytes differ
 * from its stored checksum changes the run's checksum (multiplying by a power of x modulo the
 * Castagnoli polynomial is invertible), so a single damaged frame is always caught, as a per-frame
 * check would. When the run's checksum differs the caller checks frame by frame to find which.
 *
 * The arithmetic is over GF(2) in the bit-reflected representation CRC32C uses: bit 31 is x^0.
 */

/** The Castagnoli polynomial, bit-reflected. */
const POLY = 0x82f63b78;
const X_TO_THE_0 = 0x80000000;

/** `a * b mod POLY`. */
function multiply(a: number, b: number): number {
  let product = 0;
  let bit = X_TO_THE_0;
  while (a !== 0) {
    if ((a & bit) !== 0) {
      product ^= b;
      a &= ~bit;
    }
    bit >>>= 1;
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return product >>> 0;
}

/** `X_TO_THE_2_TO_THE[k]` is x^(2^k) mod POLY. */
const X_TO_THE_2_TO_THE = new Uint32Array(32);
X_TO_THE_2_TO_THE[0] = X_TO_THE_0 >>> 1;
for (let k = 1; k < 32; k++) {
  const previous = X_TO_THE_2_TO_THE[k - 1] as number;
  X_TO_THE_2_TO_THE[k] = multiply(previous, previous);
}

/** x^(8n) mod POLY: what a checksum is multiplied by when n more bytes follow it. */
function shiftFor(bytes: number): number {
  let power = X_TO_THE_0;
  let k = 3;
  for (let n = bytes; n !== 0; n = Math.floor(n / 2), k++) {
    if (n % 2 === 1) power = multiply(X_TO_THE_2_TO_THE[k & 31] as number, power);
  }
  return power;
}

/** Byte-at-a-time table for the 8 header bytes a stored checksum does not cover. */
const BYTE_TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let i = 0; i < 8; i++) c = (c & 1) !== 0 ? (c >>> 1) ^ POLY : c >>> 1;
  BYTE_TABLE[n] = c >>> 0;
}

/** Frame lengths repeat (producers send like batches), so their shifts are kept. */
const SHIFTS = new Map<number, number>();
const MAX_SHIFTS = 4096;

function cachedShiftFor(bytes: number): number {
  let shift = SHIFTS.get(bytes);
  if (shift === undefined) {
    if (SHIFTS.size >= MAX_SHIFTS) SHIFTS.clear();
    shift = shiftFor(bytes);
    SHIFTS.set(bytes, shift);
  }
  return shift;
}

/**
 * Walks the whole frames in `buffer[from .. to)` and returns where the checked ones end: the end
 * of the last whole frame when the run's checksum matches what the frames store, otherwise `from`
 * (nothing vouched for; the caller checks each frame itself). Only the length, checksum and magic
 * of each header are looked at here; the caller still parses every header.
 */
export function checkedRunEnd(buffer: Buffer, from: number, to: number): number {
  let expected = 0;
  let at = from;
  while (at + FRAME_HEADER_BYTES <= to) {
    const dataLength = buffer.readUInt32BE(at);
    if (dataLength > MAX_FRAME_DATA_BYTES || buffer[at + 8] !== FRAME_MAGIC) break;
    const end = at + FRAME_HEADER_BYTES + dataLength;
    if (end > to) break;
    let c = ~expected;
    for (let i = at; i < at + 8; i++)
      c = (BYTE_TABLE[(c ^ (buffer[i] as number)) & 0xff] as number) ^ (c >>> 8);
    expected = (multiply(cachedShiftFor(end - at - 8), ~c >>> 0) ^ buffer.readUInt32BE(at + 4)) >>> 0;
    at = end;
  }
  if (at === from) return from;
  return crc32c(buffer.subarray(from, at)) === expected ? at : from;
}
