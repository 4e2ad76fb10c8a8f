import { createHash } from 'node:crypto';

/** Longest directory name we produce; file systems commonly allow 255 bytes. */
const MAX_DIR_NAME = 200;

/**
 * The directory name of a shard. Shard names (already checked by core's `validateShardName`) may
 * hold `/` and upper-case letters; both are escaped as `%XX` so that names stay one flat,
 * reversible level even on case-insensitive file systems. Names whose escaped form is too long
 * keep a readable prefix plus a hash; the real name is always in the shard's metadata file.
 */
export function shardDirName(shard: string): string {
  let escaped = '';
  for (const ch of shard) {
    escaped += /[a-z0-9._-]/.test(ch)
      ? ch
      : `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (escaped.length <= MAX_DIR_NAME) return escaped;
  const hash = createHash('sha256').update(shard).digest('hex').slice(0, 32);
  return `${escaped.slice(0, MAX_DIR_NAME - 33)}~${hash}`;
}

/** Segment files are named by their base offset, zero-padded so they sort by name. */
export function segmentFileStem(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

export type SegmentFileKind = 'log' | 'index' | 'timeindex' | 'offloaded';

/** The base offset in a segment file name such as `00000000000000001234.log`, or null. */
export function parseSegmentFileName(name: string): { baseOffset: number; kind: SegmentFileKind } | null {
  const match = /^(\d{20})\.(log|index|timeindex|offloaded)$/.exec(name);
  if (!match) return null;
  const baseOffset = Number(match[1]);
  if (!Number.isSafeInteger(baseOffset)) return null;
  return { baseOffset, kind: match[2] as SegmentFileKind };
}
