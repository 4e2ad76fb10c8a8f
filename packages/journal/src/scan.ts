import {
  FRAME_HEADER_BYTES,
  frameBytes,
  frameChecksumOk,
  readFrameHeader,
  type FrameHeader,
} from './frame.js';
import { checkedRunEnd } from './checksum-run.js';
import type { SegmentSource } from './offload.js';
import { FRESH_MEMORY, type ReadMemory } from './read-memory.js';
import { ReadSpan } from './read-span.js';
import type { ReadThreads } from './read-threads.js';

/** What a scan does with the frame it just met: pass over it, hand it out, or end the scan. */
export type FrameDecision = 'skip' | 'take' | 'stop';

export interface ScanRange {
  /** Byte position of the first frame. */
  from: number;
  /** Byte position the frames end at (the file size, or the committed size of the active segment). */
  to: number;
  /** The base offset the first frame must carry; each next frame must follow on. */
  expectedBase: number;
  /**
   * How many bytes a new span reads (at least the frame it is for). A function is asked at each new
   * span, so a read can size the next span to what its budget still allows.
   */
  readAhead: number | (() => number);
  /** Check the checksum of skipped frames too (recovery), not just of taken ones (reads). */
  verifyAll: boolean;
  /**
   * Asked before reading further once the bytes read so far are used up; false ends the scan
   * (`stopped`) without reading, e.g. once a read has taken as many bytes as it may return.
   */
  more?: () => boolean;
  /** Where the bytes read go; fresh memory by default. */
  memory?: ReadMemory;
  /**
   * Threads that read and check long spans in shared memory, with where the segment's index knows
   * frames to start (the byte position of the last indexed frame at or before a position).
   */
  threads?: { threads: ReadThreads; frameStartAtOrBefore: (position: number) => number };
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
 * read; frames it takes are checked against their checksum, on every read, and passed to `take`
 * as the bytes holding the whole frame (header and data) from `at` on: the read's memory, which
 * nothing overwrites while the read's caller uses it.
 */
export async function scanFrames(
  handle: SegmentSource,
  range: ScanRange,
  decide: (header: FrameHeader, position: number) => FrameDecision,
  take?: (header: FrameHeader, position: number, bytes: Buffer, at: number) => void,
): Promise<ScanResult> {
  let position = range.from;
  let expected = range.expectedBase;
  let span: ReadSpan | null = null;
  /**
   * The current span's bytes before `checkedTo` were checked as one run; once a run in a span does
   * not add up, the rest of that span is checked frame by frame.
   */
  let checkedTo = 0;
  let runFailed = false;
  const memory = range.memory ?? FRESH_MEMORY;
  const bad = (reason: string): ScanResult => ({ kind: 'bad', position, nextOffset: expected, reason });

  /**
   * Makes `position .. position + bytes` readable from a span and returns where in the span's
   * buffer `position` is, or null when the file ends first. A new span reads at least `readAhead`
   * bytes.
   */
  const ensure = async (bytes: number): Promise<number | null> => {
    if (span === null || position + bytes > span.position + span.length || position < span.position) {
      if (span !== null) await span.settle();
      const readAhead = typeof range.readAhead === 'number' ? range.readAhead : range.readAhead();
      const length = Math.min(range.to - position, Math.max(readAhead, bytes));
      span = new ReadSpan(handle, position, memory.take(length), range.threads);
      checkedTo = 0;
      runFailed = false;
    }
    const at = position - span.position;
    const filled = await span.available(at + bytes);
    return filled < at + bytes ? null : at;
  };
  /** The current span (there is one once {@link ensure} or {@link ensureNow} found bytes). */
  const currentSpan = (): ReadSpan => {
    const current = span;
    if (current === null) throw new Error('no bytes read yet');
    return current;
  };
  /**
   * {@link ensure} without waiting when the current span already holds the bytes (the usual case
   * within a span): undefined when it would have to wait or read.
   */
  const ensureNow = (bytes: number): number | null | undefined => {
    const current = span;
    if (current === null || position < current.position) return undefined;
    const at = position - current.position;
    if (at + bytes > current.length) return undefined;
    const filled = current.availableNow(at + bytes);
    if (filled === null) return undefined;
    return filled < at + bytes ? null : at;
  };

  try {
    while (position < range.to) {
      if (position + FRAME_HEADER_BYTES > range.to) return bad('torn frame header');
      const current = span as ReadSpan | null;
      const needsRead = current === null || position + FRAME_HEADER_BYTES > current.position + current.length;
      if (needsRead && range.more?.() === false) return { kind: 'stopped', position, nextOffset: expected };
      let headerAt = ensureNow(FRAME_HEADER_BYTES);
      if (headerAt === undefined) headerAt = await ensure(FRAME_HEADER_BYTES);
      if (headerAt === null) return bad('file ends early');
      const header = readFrameHeader(currentSpan().buffer, headerAt);
      if (header === null) return bad('invalid frame header');
      if (header.baseOffset !== expected)
        return bad(`frame carries offset ${header.baseOffset}, expected ${expected}`);
      const size = frameBytes(header.dataLength);
      if (position + size > range.to) return bad('torn frame');

      const decision = decide(header, position);
      if (decision === 'stop') return { kind: 'stopped', position, nextOffset: expected };
      if (decision === 'take' || range.verifyAll) {
        let at = ensureNow(size);
        if (at === undefined) at = await ensure(size);
        if (at === null) return bad('file ends early');
        const held = currentSpan();
        const buffer = held.buffer;
        if (at + size > checkedTo) {
          const checkedByThreads = held.checkedFrom(at);
          if (checkedByThreads > at) {
            checkedTo = checkedByThreads;
          } else if (!runFailed) {
            // Every whole frame already read from here on is checked in one pass.
            checkedTo = checkedRunEnd(buffer, at, held.filledNow());
            runFailed = checkedTo === at;
          }
          if (at + size > checkedTo && !frameChecksumOk(buffer, at, header)) return bad('checksum mismatch');
        }
        if (decision === 'take') take?.(header, position, buffer, at);
      }
      position += size;
      expected = header.baseOffset + header.recordCount;
    }
    return { kind: 'end', position, nextOffset: expected };
  } finally {
    // Pieces read past where the scan stopped must finish before the caller closes the handle.
    const last = span as ReadSpan | null;
    if (last !== null) await last.settle();
  }
}
