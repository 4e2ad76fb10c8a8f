import { open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, RobustMQError, type Logger } from '@robustmq/core';
import { isErrno, removeFile, syncDirectory, writeFileAtomic } from './files.js';
import { offloadedSource, readOffloadedMarker } from './offload.js';
import { Segment, type LostRange } from './segment.js';
import type { ShardContext } from './shard.js';
import { parseSegmentFileName, segmentFileStem } from './shard-dir.js';
import { readShardMeta, SHARD_META_FILE, type ShardMeta } from './shard-meta.js';

/**
 * Written when an engine closes cleanly: the last segment's size then, which its index files match.
 * It stays while the engine runs, since the active segment's index files are rewritten only when it
 * is sealed or the engine closes: after a crash, the log up to that size is known whole and
 * indexed (as Kafka's recovery point), and only what was appended since is scanned. Its end offset
 * tells, should that segment be gone at the next open, which offsets were handed out already.
 */
const CLEAN_MARKER_FILE = 'clean-shutdown.json';

interface CleanMarker {
  baseOffset: number;
  size: number;
  /** Absent in markers written before it was recorded. */
  endOffset: number | null;
}

/** Records, after a clean close, the last segment's size: its indexes match exactly that log. */
export async function writeCleanMarker(dir: string, active: Segment): Promise<void> {
  await writeFileAtomic(
    join(dir, CLEAN_MARKER_FILE),
    Buffer.from(
      JSON.stringify({ baseOffset: active.baseOffset, size: active.size, endOffset: active.endOffset }),
    ),
  );
}

/**
 * Removes the clean-shutdown marker, durably, once recovery has used it: it vouches for the log as
 * it was closed, and left in place through appends and a crash it would describe a log that has
 * since grown, so that a later recovery took offsets handed out after it for lost ones.
 */
export async function forgetCleanMarker(dir: string): Promise<void> {
  try {
    await unlink(join(dir, CLEAN_MARKER_FILE));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  await syncDirectory(dir);
}

/** Reads the clean-shutdown marker; null when there is none (or it is unreadable). */
async function readCleanMarker(dir: string): Promise<CleanMarker | null> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, CLEAN_MARKER_FILE), 'utf8')) as {
      baseOffset?: unknown;
      size?: unknown;
      endOffset?: unknown;
    };
    if (typeof parsed.baseOffset === 'number' && typeof parsed.size === 'number') {
      const { endOffset } = parsed;
      return {
        baseOffset: parsed.baseOffset,
        size: parsed.size,
        endOffset:
          typeof endOffset === 'number' && Number.isSafeInteger(endOffset) && endOffset >= parsed.baseOffset
            ? endOffset
            : null,
      };
    }
  } catch {
    // Missing or torn: the last segment is scanned whole.
  }
  return null;
}

/**
 * Loads the last segment's state up to the marker's size from its index files, when they check out
 * against the log there. False when the marker is for another segment or the files do not agree.
 */
async function loadMarkedPart(
  segment: Segment,
  fileSize: number,
  marker: CleanMarker | null,
  ctx: ShardContext,
): Promise<boolean> {
  if (marker === null || marker.baseOffset !== segment.baseOffset || marker.size > fileSize) return false;
  return segment.withHandle((h) => segment.checkIndexes(h, marker.size, ctx.indexIntervalBytes, true));
}

/**
 * Recovers the last segment after an unclean shutdown: reads every frame from `from` (0, or the end
 * of the part the clean marker vouches for, loaded already), checking each checksum, and builds the
 * rest of the indexes in memory. A crash can only cut the last append short, so a frame that fails
 * its check with whole frames after it is damage, not a torn tail: the frames after it are kept
 * (they may have been acknowledged), and reads of the lost offsets fail CORRUPT, as the checks on
 * reads find. Only damage with no whole frame after it is cut off, as a torn tail; so is a run of
 * zeros even with frames after it: bytes of appends not yet written when the process died (the
 * appends after them are acknowledged only once these are written).
 */
async function recoverActive(
  segment: Segment,
  fileSize: number,
  from: number,
  ctx: ShardContext,
  logger: Logger,
): Promise<void> {
  const { result, lost } = await segment.withHandle((h) =>
    segment.rebuildPastDamage(h, fileSize, ctx.indexIntervalBytes, {
      from: from === 0 ? 'start' : 'loaded',
      zerosEnd: true,
    }),
  );
  reportLost(segment, lost, 'in the middle of the last segment', ctx, logger);
  if (result.kind === 'bad') {
    const cut = fileSize - result.position;
    logger.warn(
      {
        segment: segment.logPath,
        position: result.position,
        offset: result.nextOffset,
        bytes: cut,
        reason: result.reason,
      },
      'truncating torn or corrupt tail of the last segment',
    );
    ctx.metrics.corruptFrames.inc({ found: 'recovery' });
    ctx.metrics.truncatedBytes.inc(undefined, cut);
    await segment.truncate(result.position);
  }
}

/** Logs and counts each range of offsets lost to damage that recovery went on past. */
function reportLost(
  segment: Segment,
  lost: readonly LostRange[],
  where: string,
  ctx: ShardContext,
  logger: Logger,
): void {
  for (const gap of lost) {
    logger.error(
      {
        segment: segment.logPath,
        position: gap.position,
        bytes: gap.bytes,
        lostFrom: gap.fromOffset,
        lostTo: gap.toOffset,
        reason: gap.reason,
      },
      `damaged frame ${where}; the frames after it are kept, reads of the lost offsets fail with CORRUPT`,
    );
    ctx.metrics.corruptFrames.inc({ found: 'recovery' });
  }
}

/**
 * Recovers a sealed segment whose indexes did not check out: rebuilds them from the log. Frames
 * after damage are kept (they were acknowledged), and reads of the offsets lost in between get
 * CORRUPT. Garbage after a complete segment is cut off; a segment whose frames stop short of the
 * next segment is kept as it is, and reads that reach the damage get CORRUPT.
 */
async function recoverSealed(
  segment: Segment,
  fileSize: number,
  nextBase: number,
  ctx: ShardContext,
  logger: Logger,
): Promise<void> {
  const { result, lost } = await segment.withHandle((h) =>
    segment.rebuildPastDamage(h, fileSize, ctx.indexIntervalBytes, { from: 'start', zerosEnd: false }),
  );
  reportLost(segment, lost, 'in a sealed segment', ctx, logger);
  if (segment.endOffset === nextBase) {
    if (result.kind === 'bad') {
      logger.warn(
        { segment: segment.logPath, position: result.position, bytes: fileSize - result.position },
        'truncating garbage after a sealed segment',
      );
      ctx.metrics.truncatedBytes.inc(undefined, fileSize - result.position);
      await segment.truncate(result.position);
    } else {
      logger.info({ segment: segment.logPath }, 'rebuilt missing or stale segment indexes');
    }
  } else {
    logger.error(
      {
        segment: segment.logPath,
        position: result.position,
        offset: result.nextOffset,
        expectedEnd: nextBase,
        reason: result.reason,
      },
      'sealed segment is damaged; reads reaching the damage fail with CORRUPT',
    );
    ctx.metrics.corruptFrames.inc({ found: 'recovery' });
    segment.damagedAt = result.position;
    segment.size = fileSize;
    segment.endOffset = nextBase;
  }
  await segment.writeIndexes();
}

/**
 * Sets up an offloaded segment from its marker. One whose extent does not reach the next segment
 * (files lost) is treated like a damaged segment: reads reaching the gap get CORRUPT.
 */
async function recoverOffloaded(
  segment: Segment,
  shard: string,
  nextBase: number | undefined,
  ctx: ShardContext,
  logger: Logger,
): Promise<void> {
  const marker = await readOffloadedMarker(segment.offloadedPath);
  if (marker === null) {
    throw new RobustMQError(
      ErrorCode.Corrupt,
      `offloaded segment marker ${segment.offloadedPath} is damaged`,
    );
  }
  // The reader is told the extent the segment had when it was offloaded: the marker's, not the
  // blank one of a segment not restored yet.
  const described = {
    ...segment.describe(shard),
    size: marker.size,
    endOffset: marker.endOffset,
    maxTimestamp: marker.maxTimestamp,
    offloaded: true,
  };
  segment.restoreOffloaded(marker, offloadedSource(ctx.offloadedReader, described));
  if (nextBase !== undefined && marker.endOffset !== nextBase) {
    logger.error(
      { segment: segment.offloadedPath, endOffset: marker.endOffset, expectedEnd: nextBase },
      'offloaded segment does not reach the next segment; reads reaching the gap fail with CORRUPT',
    );
    segment.damagedAt = marker.size;
    segment.endOffset = nextBase;
  }
}

/**
 * The segment the engine last closed with is gone, or holds fewer records than it did then (removed,
 * cut short or emptied by hand, or lost with the disk): the records missing are lost. Their offsets were handed out, so when the clean marker
 * says where they ended, the log goes on from there rather than handing them out again to other
 * records; the segment left last is sealed as damaged up to that offset, so reads of the lost
 * offsets fail CORRUPT, as for any other lost segment. True when a new active segment was started.
 */
async function goOnAfterLostTail(
  dir: string,
  clean: CleanMarker,
  meta: ShardMeta,
  segments: Segment[],
  ctx: ShardContext,
  logger: Logger,
): Promise<boolean> {
  const last = segments[segments.length - 1];
  const lostFrom = Math.max(last?.endOffset ?? 0, meta.logStartOffset);
  const end = clean.endOffset;
  const segment = join(dir, `${segmentFileStem(clean.baseOffset)}.log`);
  const what =
    last?.baseOffset === clean.baseOffset ? 'the last segment was cut short' : 'the last segment is missing';
  if (end !== null && end <= lostFrom) {
    logger.warn({ segment }, `${what}; it held no records`);
    return false;
  }
  logger.error({ segment, lostFrom, lostTo: end }, `${what}; the records it held are lost`);
  if (end === null) return false;
  if (last !== undefined && last.endOffset > meta.logStartOffset) {
    last.damagedAt = last.size;
    last.endOffset = end;
    if (!last.offloaded) {
      // Sealed segments are durable, and their indexes are on disk.
      const handle = await open(last.logPath, 'r+');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await last.writeIndexes();
      ctx.indexCache.touch(last);
    }
  } else {
    // Nothing left is above the log start: the log starts afresh after the lost offsets.
    for (const segment of segments) await segment.remove();
    segments.length = 0;
  }
  const fresh = new Segment(dir, end, ctx.readHandles, ctx.writeHandles);
  await fresh.create();
  await syncDirectory(dir);
  segments.push(fresh);
  return true;
}

/** Whether `name` is a file the journal keeps in a shard directory. */
function isJournalFile(name: string): boolean {
  return name === SHARD_META_FILE || name === CLEAN_MARKER_FILE || parseSegmentFileName(name) !== null;
}

/**
 * Loads a shard directory after a clean or unclean shutdown: removes leftovers (temp files, orphan
 * indexes, segments below the persisted log start), checks every sealed segment against its
 * indexes (rebuilding them when missing or stale), and recovers the last segment, which is left
 * open for appending. Offloaded segments are taken from their markers; an offload cut short (the
 * log and a marker both there) keeps the local log.
 */
export async function recoverShard(
  dir: string,
  ctx: ShardContext,
): Promise<{ meta: ShardMeta; segments: Segment[] }> {
  const opened: Segment[] = [];
  try {
    return await recoverSegments(dir, ctx, opened);
  } catch (error) {
    // The shard is not opened: release what reading its segments kept open.
    for (const segment of opened) await segment.retireReader();
    throw error;
  }
}

/** {@link recoverShard}; `opened` collects the segments it reads, to be released on failure. */
async function recoverSegments(
  dir: string,
  ctx: ShardContext,
  opened: Segment[],
): Promise<{ meta: ShardMeta; segments: Segment[] }> {
  const meta = await readShardMeta(dir);
  const logger = ctx.logger.child({ shard: meta.name });
  const files = new Map<number, Set<string>>();
  for (const found of await readdir(dir, { withFileTypes: true })) {
    // The journal makes files only: a directory here is someone else's, and stays.
    if (found.isDirectory()) continue;
    const entry = found.name;
    if (entry.endsWith('.tmp')) {
      // Only the journal's own temp files (of an atomic replace cut short) are removed.
      if (isJournalFile(entry.slice(0, -'.tmp'.length))) await removeFile(join(dir, entry));
      continue;
    }
    const parsed = parseSegmentFileName(entry);
    if (parsed === null) continue;
    const kinds = files.get(parsed.baseOffset) ?? new Set<string>();
    kinds.add(parsed.kind);
    files.set(parsed.baseOffset, kinds);
  }
  const bases: number[] = [];
  const offloaded = new Set<number>();
  for (const [base, kinds] of files) {
    if (kinds.has('log')) {
      bases.push(base);
      // The offload was cut short; tiering checks the copy again and offloads it again.
      if (kinds.has('offloaded')) await removeFile(new Segment(dir, base).offloadedPath);
    } else if (kinds.has('offloaded')) {
      bases.push(base);
      offloaded.add(base);
    } else {
      const orphan = new Segment(dir, base);
      await removeFile(orphan.indexPath);
      await removeFile(orphan.timeIndexPath);
    }
  }
  bases.sort((a, b) => a - b);

  // Segments wholly below a persisted log start were meant to be deleted before a crash.
  while (bases.length > 1 && (bases[1] ?? 0) <= meta.logStartOffset) {
    await new Segment(dir, bases.shift() ?? 0).remove();
  }

  const clean = await readCleanMarker(dir);
  const segments: Segment[] = [];
  for (let i = 0; i < bases.length; i++) {
    const segment = new Segment(dir, bases[i] ?? 0, ctx.readHandles, ctx.writeHandles);
    opened.push(segment);
    const nextBase = bases[i + 1];
    if (offloaded.has(segment.baseOffset)) {
      await recoverOffloaded(segment, meta.name, nextBase, ctx, logger);
      segments.push(segment);
      continue;
    }
    const fileSize = (await stat(segment.logPath)).size;
    if (nextBase === undefined) {
      const marked = await loadMarkedPart(segment, fileSize, clean, ctx);
      if (!marked) {
        // The marker vouches for nothing here, and must not later vouch for a log recovery changed.
        await removeFile(join(dir, CLEAN_MARKER_FILE));
        await recoverActive(segment, fileSize, 0, ctx, logger);
      } else if (segment.size < fileSize) {
        await recoverActive(segment, fileSize, segment.size, ctx, logger);
      }
    } else {
      const sound =
        (await segment.withHandle((h) => segment.checkIndexes(h, fileSize, ctx.indexIntervalBytes, false))) &&
        segment.endOffset === nextBase;
      if (!sound) await recoverSealed(segment, fileSize, nextBase, ctx, logger);
      if (segment.indexesLoaded) ctx.indexCache.touch(segment);
    }
    segments.push(segment);
  }

  const last = segments[segments.length - 1];
  // After a clean close, the last segment is gone or holds less than it did: its offsets were
  // handed out, so the log goes on after them.
  const lostTail =
    clean !== null &&
    (last === undefined ||
      clean.baseOffset > last.baseOffset ||
      (clean.baseOffset === last.baseOffset && clean.endOffset !== null && last.endOffset < clean.endOffset));
  if (clean !== null && lostTail) {
    const resumed = await goOnAfterLostTail(dir, clean, meta, segments, ctx, logger);
    if (resumed) return { meta, segments };
  }
  if (last?.offloaded === true && last.endOffset >= meta.logStartOffset) {
    // Only sealed segments are offloaded, so the active one was lost: start a new one after it.
    logger.warn({ nextOffset: last.endOffset }, 'no local active segment; starting a new one');
    const fresh = new Segment(dir, last.endOffset, ctx.readHandles, ctx.writeHandles);
    await fresh.create();
    await syncDirectory(dir);
    segments.push(fresh);
    return { meta, segments };
  }
  if (last === undefined || last.endOffset < meta.logStartOffset) {
    // Everything left lies below the log start (or nothing is left): start afresh there.
    if (last !== undefined)
      logger.warn(
        { logStartOffset: meta.logStartOffset, nextOffset: last.endOffset },
        'log ends before its start; starting a new segment',
      );
    for (const segment of segments) await segment.remove();
    segments.length = 0;
    const fresh = new Segment(dir, meta.logStartOffset, ctx.readHandles, ctx.writeHandles);
    await fresh.create();
    await syncDirectory(dir);
    segments.push(fresh);
  } else {
    last.openForAppend();
  }
  return { meta, segments };
}
