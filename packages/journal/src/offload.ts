import { readFile } from 'node:fs/promises';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { writeFileAtomic } from './files.js';

/**
 * Where a segment's log bytes are read from: the local file (a `FileHandle` is one), or the copy
 * of an offloaded segment kept elsewhere.
 */
export interface SegmentSource {
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; fewer only at the end. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** A sealed segment of a shard, as tiering sees it. */
export interface SealedSegment {
  shard: string;
  /** Offset of its first record (also its file name). */
  baseOffset: number;
  /** The offset after its last record: the next segment's base. */
  endOffset: number;
  /** Bytes of its log. */
  size: number;
  /** Newest record timestamp in it; -Infinity when it holds none. */
  maxTimestamp: number;
  /** Path of the log file while the segment is held locally. */
  logPath: string;
  /** True once its local log was dropped: reads go to the {@link OffloadedSegmentReader}. */
  offloaded: boolean;
  /** True when the log was found damaged; such a segment is never offloaded. */
  damaged: boolean;
}

/**
 * Reads the log bytes of segments whose local copy was dropped by `Journal.offloadSegment`.
 * Errors it throws reach the caller of `read` or `offsetForTimestamp` unchanged when they are
 * RobustMQErrors (e.g. UNAVAILABLE while the remote store is down).
 */
export interface OffloadedSegmentReader {
  /** Up to `length` bytes at `position` of the segment's log; fewer only at its end. */
  read(segment: SealedSegment, position: number, length: number): Promise<Uint8Array>;
}

/** Called after the active segment of a shard was sealed and a new one started. */
export type SegmentSealedListener = (segment: SealedSegment) => void;

/**
 * What an offloaded segment keeps locally beside its index files, in `<base>.offloaded`: what
 * recovery would otherwise learn by reading the log.
 */
export interface OffloadedMarker {
  size: number;
  endOffset: number;
  maxTimestamp: number;
  lastBatchRelative: number;
}

export async function writeOffloadedMarker(path: string, marker: OffloadedMarker): Promise<void> {
  const json = {
    ...marker,
    // JSON has no -Infinity: an empty segment's newest timestamp is stored as null.
    maxTimestamp: Number.isFinite(marker.maxTimestamp) ? marker.maxTimestamp : null,
  };
  await writeFileAtomic(path, Buffer.from(JSON.stringify(json)));
}

/** Reads a marker; null when it is missing or damaged. */
export async function readOffloadedMarker(path: string): Promise<OffloadedMarker | null> {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  const { size, endOffset, maxTimestamp, lastBatchRelative } = parsed;
  const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
  if (!count(size) || !count(endOffset) || !count(lastBatchRelative)) return null;
  if (maxTimestamp !== null && (typeof maxTimestamp !== 'number' || !Number.isFinite(maxTimestamp)))
    return null;
  return { size, endOffset, lastBatchRelative, maxTimestamp: maxTimestamp ?? -Infinity };
}

/**
 * A {@link SegmentSource} over an offloaded segment's copy. Without a reader (a journal opened
 * without one over offloaded segments) reads fail with UNAVAILABLE.
 */
export function offloadedSource(
  reader: OffloadedSegmentReader | null,
  segment: SealedSegment,
): SegmentSource {
  return {
    async read(buffer, offset, length, position) {
      if (reader === null) {
        throw new RobustMQError(
          ErrorCode.Unavailable,
          `segment ${segment.baseOffset} of shard ${segment.shard} was offloaded and this journal has no reader for offloaded segments`,
        );
      }
      const bytes = await reader.read(segment, position, length);
      const n = Math.min(bytes.length, length);
      buffer.set(bytes.subarray(0, n), offset);
      return { bytesRead: n };
    },
  };
}
