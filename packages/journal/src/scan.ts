import { readAt } from './files.js';
import {
  FRAME_HEADER_BYTES,
  frameBytes,
  frameChecksumOk,
  readFrameHeader,
  type FrameHeader,
} from './frame.js';
import type { SegmentSource } from './offload.js';

/** What a scan does with the frame it just met: pass over it, hand it out, or end the scan. */
export type FrameDecision = 'skip' | 'take' | 'stop';

export interface ScanRange {
  /** Byte position of the first frame. */
  from: number;
  /** Byte position the frames end at (the file size, or the committed size of the active segment). */
  to: number;
  /** The base offset the first frame must carry; each next frame must follow on. */
  expectedBase: number;
  /** How many bytes to read at a time. */
  readAhead: number;
  /** Check the checksum of skipped frames too (recovery), not just of taken ones (reads). */
  verifyAll: boolean;
}

/**
 * How a scan ended: `end` at `to`; `stopped` because the visitor said so; `bad` at a frame that is
 * torn, garbage, out of sequence or fails its checksum. `position` is where it ended and
 * `nextOffset` the offset a frame there would carry.
 */
export interface ScanResult {
  kind: 'end' | 'stopped' | 'bad';
  position: number;
  nextOffset: number;
  reason?: string;
}

/**
 * Walks the frames of a segment file in `range`. `decide` sees each header before its data is
 * read; frames it takes are checked against their checksum and passed to `take` as the whole frame
 * (header and data, a view into a read buffer).
 */
export async function scanFrames(
  handle: SegmentSource,
  range: ScanRange,
  decide: (header: FrameHeader, position: number) => FrameDecision,
  take?: (header: FrameHeader, position: number, frame: Buffer) => void,
): Promise<ScanResult> {
  let position = range.from;
  let expected = range.expectedBase;
  let buffer: Buffer = Buffer.alloc(0);
  let bufferStart = position;
  const bad = (reason: string): ScanResult => ({ kind: 'bad', position, nextOffset: expected, reason });

  while (position < range.to) {
    if (position + FRAME_HEADER_BYTES > bufferStart + buffer.length) {
      if (position + FRAME_HEADER_BYTES > range.to) return bad('torn frame header');
      buffer = await readAt(
        handle,
        position,
        Math.min(range.to - position, Math.max(range.readAhead, FRAME_HEADER_BYTES)),
      );
      bufferStart = position;
      if (buffer.length < FRAME_HEADER_BYTES) return bad('file ends early');
    }
    let at = position - bufferStart;
    const header = readFrameHeader(buffer, at);
    if (header === null) return bad('invalid frame header');
    if (header.baseOffset !== expected)
      return bad(`frame carries offset ${header.baseOffset}, expected ${expected}`);
    const size = frameBytes(header.dataLength);
    if (position + size > range.to) return bad('torn frame');

    const decision = decide(header, position);
    if (decision === 'stop') return { kind: 'stopped', position, nextOffset: expected };
    if (decision === 'take' || range.verifyAll) {
      if (at + size > buffer.length) {
        buffer = await readAt(
          handle,
          position,
          Math.min(range.to - position, Math.max(size, range.readAhead)),
        );
        bufferStart = position;
        at = 0;
        if (buffer.length < size) return bad('file ends early');
      }
      const frame = buffer.subarray(at, at + size);
      if (!frameChecksumOk(frame, 0, header)) return bad('checksum mismatch');
      if (decision === 'take') take?.(header, position, frame);
    }
    position += size;
    expected = header.baseOffset + header.recordCount;
  }
  return { kind: 'end', position, nextOffset: expected };
}
