import { readAt } from './files.js';
import {
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  frameBytes,
  frameChecksumOk,
  readFrameHeader,
  type FrameHeader,
} from './frame.js';
import type { SegmentSource } from './offload.js';

/** Bytes read at a time while searching for the next frame. */
const SEARCH_CHUNK = 1024 * 1024;
/** The magic byte and the three reserved zero bytes every header holds at byte 8. */
const MAGIC_BYTES = Buffer.from([FRAME_MAGIC, 0, 0, 0]);

/** A whole frame, checked against its checksum, found after damage. */
export interface FoundFrame {
  position: number;
  header: FrameHeader;
  /** Whether every byte between the damage and this frame is zero. */
  zerosBefore: boolean;
}

/**
 * The whole frame at `position` when it is one: a header that parses (taken from `head` at
 * `headAt` when given, else read), carrying an offset after `after`, its data inside the file,
 * and its checksum matching. Null otherwise.
 */
async function frameAt(
  handle: SegmentSource,
  position: number,
  to: number,
  after: number,
  head?: Buffer,
  headAt = 0,
): Promise<FrameHeader | null> {
  if (position + FRAME_HEADER_BYTES > to) return null;
  const header = readFrameHeader(head ?? (await readAt(handle, position, FRAME_HEADER_BYTES)), headAt);
  if (header === null || header.baseOffset <= after) return null;
  const size = frameBytes(header.dataLength);
  if (position + size > to) return null;
  const whole = await readAt(handle, position, size);
  return whole.length === size && frameChecksumOk(whole, 0, header) ? header : null;
}

/** Whether `from .. to` of the file holds only zero bytes. */
async function allZeros(handle: SegmentSource, from: number, to: number): Promise<boolean> {
  for (let at = from; at < to; at += SEARCH_CHUNK) {
    const bytes = await readAt(handle, at, Math.min(SEARCH_CHUNK, to - at));
    if (bytes.some((byte) => byte !== 0)) return false;
  }
  return true;
}

/**
 * Looks, after a frame at `damagedAt` that failed its check (it should carry offset `expected`),
 * for the next whole frame before `to`: first where the damaged frame's own length points, then
 * at every later position whose bytes could start a header. Its offset must come after
 * `expected`, and its checksum (which covers its offset) must match, so bytes that merely look
 * like a header are not taken. Null when there is none: the damage runs to the end.
 */
export async function findFrameAfterDamage(
  handle: SegmentSource,
  damagedAt: number,
  to: number,
  expected: number,
): Promise<FoundFrame | null> {
  const found = async (position: number, header: FrameHeader): Promise<FoundFrame> => ({
    position,
    header,
    zerosBefore: await allZeros(handle, damagedAt, position),
  });
  if (damagedAt + FRAME_HEADER_BYTES <= to) {
    const own = readFrameHeader(await readAt(handle, damagedAt, FRAME_HEADER_BYTES), 0);
    if (own !== null) {
      const next = damagedAt + frameBytes(own.dataLength);
      const header = await frameAt(handle, next, to, expected);
      if (header !== null) return found(next, header);
    }
  }
  // The damaged frame takes at least a header's bytes, so the next one starts after them.
  let chunkStart = damagedAt + FRAME_HEADER_BYTES;
  while (chunkStart + FRAME_HEADER_BYTES <= to) {
    // Each chunk reads the 8 bytes before the magic of every candidate it searches, and the
    // magic's bytes; the next chunk starts at the first candidate this one could not search.
    const length = Math.min(SEARCH_CHUNK, to - chunkStart);
    const chunk = await readAt(handle, chunkStart, length);
    let magicAt = chunk.indexOf(MAGIC_BYTES, 8);
    while (magicAt >= 0) {
      const position = chunkStart + magicAt - 8;
      // Most candidates are ruled out by the header alone, read from the chunk when it is in it.
      const inChunk = magicAt - 8 + FRAME_HEADER_BYTES <= chunk.length;
      const header = inChunk
        ? await frameAt(handle, position, to, expected, chunk, magicAt - 8)
        : await frameAt(handle, position, to, expected);
      if (header !== null) return found(position, header);
      magicAt = chunk.indexOf(MAGIC_BYTES, magicAt + 1);
    }
    if (chunkStart + length >= to) break;
    chunkStart += length - (8 + MAGIC_BYTES.length - 1);
  }
  return null;
}
