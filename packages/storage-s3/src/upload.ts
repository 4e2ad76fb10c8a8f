import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import type { SealedSegment } from '@robustmq/journal';
import type { SegmentBucket, StoredObject } from './bucket.js';

const DIGEST_CHUNK_BYTES = 1024 * 1024;

/** Digests of a segment's log. */
export interface SegmentDigest {
  md5: Buffer;
  sha256: string;
}

/** How a sealed segment's copy was confirmed. */
export interface CopyResult {
  /** Digests of the segment's log, which the object now holds. */
  digest: SegmentDigest;
  /** False when the bucket held the same bytes already (an upload before a crash or restart). */
  uploaded: boolean;
}

async function digest(handle: FileHandle, size: number): Promise<SegmentDigest> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const buffer = Buffer.allocUnsafe(Math.min(DIGEST_CHUNK_BYTES, Math.max(size, 1)));
  let position = 0;
  while (position < size) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
    if (bytesRead === 0) {
      throw new RobustMQError(ErrorCode.Internal, `segment log ended at ${position} of ${size} bytes`);
    }
    md5.update(buffer.subarray(0, bytesRead));
    sha256.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return { md5: md5.digest(), sha256: sha256.digest('hex') };
}

interface KnownDigest {
  size: number;
  mtimeMs: number;
  ino: number;
  digest: SegmentDigest;
}

/** Entries kept at most; past it the oldest go (one is just read again if needed). */
const MAX_KNOWN_DIGESTS = 10_000;

/**
 * Digests of sealed segment logs already read. A sealed log does not change, so while its upload
 * is retried (a long bucket outage) it is not read whole again on every pass; a file that did
 * change anyway (other size, modification time or inode) is read again.
 */
export class SegmentDigests {
  readonly #known = new Map<string, KnownDigest>();

  /** The digests of the segment's log open at `handle`. */
  async of(handle: FileHandle, segment: SealedSegment): Promise<SegmentDigest> {
    const stat = await handle.stat();
    const known = this.#known.get(segment.logPath);
    if (
      known !== undefined &&
      known.size === segment.size &&
      known.mtimeMs === stat.mtimeMs &&
      known.ino === stat.ino
    ) {
      return known.digest;
    }
    const computed = await digest(handle, segment.size);
    this.#known.delete(segment.logPath);
    this.#known.set(segment.logPath, {
      size: segment.size,
      mtimeMs: stat.mtimeMs,
      ino: stat.ino,
      digest: computed,
    });
    if (this.#known.size > MAX_KNOWN_DIGESTS) {
      const [oldest] = this.#known.keys();
      if (oldest !== undefined) this.#known.delete(oldest);
    }
    return computed;
  }

  /** Drops what is known of a log: its copy is confirmed, or the file is gone. */
  forget(logPath: string): void {
    this.#known.delete(logPath);
  }
}

/**
 * Whether the bucket's object is exactly the segment: same size, same MD5 or SHA-256, and the
 * metadata naming the segment that reads check (an object with the right bytes but without it is
 * uploaded over, or reads would refuse it).
 */
export function holds(object: StoredObject | null, segment: SealedSegment, digest: SegmentDigest): boolean {
  return (
    object !== null &&
    object.size === segment.size &&
    object.shard === segment.shard &&
    object.endOffset === segment.endOffset &&
    (object.etag === digest.md5.toString('hex') || object.sha256 === digest.sha256)
  );
}

/**
 * Makes sure the bucket holds a sealed segment's log byte for byte: if the object is not there
 * already (size and digest checked), uploads it and checks again. Idempotent, since the key is
 * fixed by the shard and base offset. Resolves null when the local log is gone (retention removed
 * the segment meanwhile).
 */
export async function copySegment(
  bucket: SegmentBucket,
  segment: SealedSegment,
  digests: SegmentDigests,
): Promise<CopyResult | null> {
  let handle: FileHandle;
  try {
    handle = await open(segment.logPath, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      digests.forget(segment.logPath);
      return null;
    }
    throw error;
  }
  let body: Readable | undefined;
  try {
    const digested = await digests.of(handle, segment);
    const key = bucket.keyOf(segment.shard, segment.baseOffset);
    if (holds(await bucket.head(key), segment, digested)) return { digest: digested, uploaded: false };
    // Read through the open handle, so the bytes hashed are the bytes sent even if the file goes.
    body =
      segment.size === 0
        ? undefined
        : handle.createReadStream({ start: 0, end: segment.size - 1, autoClose: false });
    await bucket.put(key, {
      body: body ?? new Uint8Array(0),
      size: segment.size,
      ...digested,
      shard: segment.shard,
      endOffset: segment.endOffset,
    });
    const stored = await bucket.head(key);
    if (!holds(stored, segment, digested)) {
      throw new RobustMQError(
        ErrorCode.Unavailable,
        `upload of ${key} not confirmed: the bucket holds ${stored === null ? 'nothing' : `${stored.size} bytes, ETag ${stored.etag}`}`,
      );
    }
    return { digest: digested, uploaded: true };
  } finally {
    body?.destroy();
    await handle.close();
  }
}
