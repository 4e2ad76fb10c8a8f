import { constants } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isErrno, removeFile, writeAll, writeFileAtomic, readAt } from './files.js';
import { FRAME_HEADER_BYTES, frameBytes, readFrameHeader, type FrameHeader } from './frame.js';
import { OffsetIndex } from './offset-index.js';
import type { ReadHandleCache, ReadHandleHolder } from './read-handles.js';
import type { WriteHandleBudget, WriteHandleHolder } from './write-handles.js';
import {
  writeOffloadedMarker,
  type OffloadedMarker,
  type SealedSegment,
  type SegmentSource,
} from './offload.js';
import { findFrameAfterDamage } from './resync.js';
import { scanFrames, type ScanResult } from './scan.js';
import { segmentFileStem } from './shard-dir.js';
import { TimeIndex } from './time-index.js';

const SCAN_READ_AHEAD = 1024 * 1024;
/** Opens the log for writes that return only once their bytes are durable; null where unsupported. */
const DSYNC_WRITE_FLAGS = constants.O_DSYNC === undefined ? null : constants.O_WRONLY | constants.O_DSYNC;

/** A read handle of a sealed segment's log, kept open between reads. */
interface KeptReader {
  handle: Promise<FileHandle>;
  /** Reads using it now. */
  users: number;
}

/**
 * One segment of a shard's log: `<base>.log` holding frames, plus `<base>.index` (offset index)
 * and `<base>.timeindex` (time index). The last segment of a shard is the active one: it is
 * appended to through a handle it keeps open while the engine's {@link WriteHandleBudget} allows
 * (closed when idle and over the budget, opened again on the next use), and its indexes live in
 * memory (they are written out when it is sealed or the engine closes cleanly). Sealed segments
 * are read through a handle kept in a bounded cache, and their indexes are loaded on demand.
 *
 * A sealed segment can be offloaded: its log is dropped locally once a copy is kept elsewhere; its
 * index files stay, `<base>.offloaded` records its extent, and reads go to that copy.
 */
export class Segment implements ReadHandleHolder, WriteHandleHolder {
  readonly baseOffset: number;
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;
  readonly offloadedPath: string;
  /** Bytes of log written (for the active segment this includes bytes not yet committed). */
  size = 0;
  /** The offset after the last batch written. */
  endOffset: number;
  /** Largest max timestamp of any batch, or -Infinity when empty. */
  maxTimestamp = -Infinity;
  /** Offset of the last batch relative to the base, or -1 when empty. */
  lastBatchRelative = -1;
  /** Where frames stop being readable in a damaged sealed segment; null when sound. */
  damagedAt: number | null = null;

  #bytesSinceIndexEntry = 0;
  #index: OffsetIndex | null = null;
  #timeIndex: TimeIndex | null = null;
  /** Whether the indexes were rebuilt from the log in this process, so they match it. */
  #indexesRebuilt = false;
  /** A load of a sealed segment's indexes under way, which other reads wait for. */
  #loadingIndexes: Promise<SegmentIndexes> | null = null;
  /** Whether this is the active segment, appended to until it is sealed or its shard closed. */
  #appendable = false;
  /** The appending handle while open; the budget may close it between uses. */
  #writer: FileHandle | null = null;
  #writerOpening: Promise<FileHandle> | null = null;
  /** Handles of the log opened with O_DSYNC for durable writes, free for the next one. */
  #idleSyncWriters: FileHandle[] = [];
  /** Writes through `#writer` that returned, and how many of them the last datasync covered. */
  #plainWrites = 0;
  #plainWritesSynced = 0;
  /** Calls using the appending handle now (or waiting for it to open). */
  #writerUsers = 0;
  /** Durable writes using (or opening) a handle of their own now. */
  #syncWriting = 0;
  /** Called once neither kind of handle is in use, for closeWriter. */
  #onWriterIdle: (() => void) | null = null;
  /** Bounds the handles active segments keep open; null: kept until the segment is sealed. */
  readonly #writeHandles: WriteHandleBudget | null;
  /** Handles closed for the budget, being synced and closed. */
  #releasing: Promise<void> | null = null;
  /** A sync that failed while handles were released for the budget: the next datasync throws it. */
  #releaseError: Error | null = null;
  /** Where the log is read from once offloaded; null while it is held locally. */
  #offloaded: SegmentSource | null = null;
  /** The read handle of a sealed segment kept open between reads; null when none is. */
  #reader: KeptReader | null = null;
  /** Null once the segment is removed or its shard closed: reads from then on open their own. */
  #readHandles: ReadHandleCache | null;

  /**
   * `readHandles` bounds the read handles kept open (without it every read opens its own);
   * `writeHandles` the handles of active segments (without it they stay open until sealed).
   */
  constructor(
    dir: string,
    baseOffset: number,
    readHandles: ReadHandleCache | null = null,
    writeHandles: WriteHandleBudget | null = null,
  ) {
    this.#readHandles = readHandles;
    this.#writeHandles = writeHandles;
    this.baseOffset = baseOffset;
    this.endOffset = baseOffset;
    const stem = segmentFileStem(baseOffset);
    this.logPath = join(dir, `${stem}.log`);
    this.indexPath = join(dir, `${stem}.index`);
    this.timeIndexPath = join(dir, `${stem}.timeindex`);
    this.offloadedPath = join(dir, `${stem}.offloaded`);
  }

  /** This segment as tiering sees it (call once it is sealed). */
  describe(shard: string): SealedSegment {
    return {
      shard,
      baseOffset: this.baseOffset,
      endOffset: this.endOffset,
      size: this.size,
      maxTimestamp: this.maxTimestamp,
      logPath: this.logPath,
      offloaded: this.offloaded,
      damaged: this.damagedAt !== null,
    };
  }

  /** Whether the log was dropped locally and is read from a copy kept elsewhere. */
  get offloaded(): boolean {
    return this.#offloaded !== null;
  }

  get isEmpty(): boolean {
    return this.lastBatchRelative < 0;
  }

  /** Whether the indexes were rebuilt from the log in this process (see {@link rebuildIndexes}). */
  get indexesRebuilt(): boolean {
    return this.#indexesRebuilt;
  }

  get indexesLoaded(): boolean {
    return this.#index !== null;
  }

  /** The offset index (loaded: see {@link loadIndexes}). */
  get index(): OffsetIndex {
    if (this.#index === null) throw new Error(`indexes of ${this.logPath} are not loaded`);
    return this.#index;
  }

  get timeIndex(): TimeIndex {
    if (this.#timeIndex === null) throw new Error(`indexes of ${this.logPath} are not loaded`);
    return this.#timeIndex;
  }

  /** Creates the empty log file of a new active segment and keeps it open for appending. */
  async create(): Promise<void> {
    const writer = await this.#openLog('wx+');
    this.#index = new OffsetIndex();
    this.#timeIndex = new TimeIndex();
    this.#appendable = true;
    this.#writer = writer;
  }

  /**
   * Makes an existing log file the active segment (after recovery). Its handle is opened on the
   * first use, so that an engine with many shards holds none for the shards nobody uses.
   */
  openForAppend(): void {
    this.#appendable = true;
    // What the file holds may not be durable yet (written before a crash): sync it before relying on it.
    this.#plainWrites = 1;
    this.#plainWritesSynced = 0;
  }

  /** Opens a handle of the log, within the engine's budget of handles. */
  async #openLog(flags: string | number): Promise<FileHandle> {
    const budget = this.#writeHandles;
    if (budget === null) return open(this.logPath, flags);
    await budget.reserve(this);
    try {
      return await open(this.logPath, flags);
    } catch (error) {
      budget.closed(this, 1);
      throw error;
    }
  }

  /** The appending handle if open, marked as just used; null when it must be opened again. */
  #currentWriter(): FileHandle | null {
    const writer = this.#writer;
    if (writer !== null) this.#writeHandles?.use(this);
    return writer;
  }

  /** Opens the appending handle again after the budget closed it; the caller counts as a user. */
  #reopenWriter(): Promise<FileHandle> {
    this.#writerOpening ??= (async () => {
      try {
        const writer = await this.#openLog('r+');
        this.#writer = writer;
        return writer;
      } finally {
        this.#writerOpening = null;
      }
    })();
    return this.#writerOpening;
  }

  /** Ends a use counted in `#writerUsers` or `#syncWriting`. */
  #doneWithHandle(): void {
    if (this.#writerUsers > 0 || this.#syncWriting > 0) return;
    this.#writeHandles?.idled();
    if (this.#onWriterIdle !== null) {
      const idle = this.#onWriterIdle;
      this.#onWriterIdle = null;
      idle();
    }
  }

  /** Runs `use` with the appending handle, opening it again if the budget closed it. */
  async #withWriter<T>(use: (writer: FileHandle) => Promise<T>): Promise<T> {
    if (!this.#appendable) throw new Error(`segment ${this.logPath} is not open for appending`);
    this.#writerUsers++;
    try {
      return await use(this.#currentWriter() ?? (await this.#reopenWriter()));
    } finally {
      this.#writerUsers--;
      this.#doneWithHandle();
    }
  }

  /**
   * Starts closing, for the budget, the handles no call is using. Writes through the appending
   * handle not yet synced are synced first, so that a write-back error is not lost with the
   * handle: a failed sync is kept and thrown by the next datasync, which fails the shard as its own
   * would.
   */
  releaseIdle(): number {
    const handles = this.#idleSyncWriters.splice(0);
    const writer = this.#writerUsers === 0 ? this.#writer : null;
    if (writer !== null) this.#writer = null;
    const count = handles.length + (writer === null ? 0 : 1);
    if (count === 0) return 0;
    const covered = this.#plainWrites;
    const unsynced = writer !== null && this.#plainWritesSynced < covered;
    if (writer !== null) handles.push(writer);
    const releasing = this.#closeReleased(this.#releasing, handles, unsynced ? writer : null, covered);
    this.#releasing = releasing;
    void releasing.then(() => {
      if (this.#releasing === releasing) this.#releasing = null;
    });
    return count;
  }

  /** Syncs `unsynced` (the appending handle, with writes up to `covered`), then closes `handles`. */
  async #closeReleased(
    previous: Promise<void> | null,
    handles: FileHandle[],
    unsynced: FileHandle | null,
    covered: number,
  ): Promise<void> {
    await previous;
    if (unsynced !== null) {
      try {
        await unsynced.datasync();
        this.#plainWritesSynced = Math.max(this.#plainWritesSynced, covered);
      } catch (error) {
        this.#releaseError ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    for (const handle of handles) {
      try {
        await handle.close();
      } catch (error) {
        this.#writeHandles?.closeFailed(error);
      }
    }
    this.#writeHandles?.released(this, handles.length);
  }

  /**
   * Runs `use` with a source of the log's bytes: the shared appending handle, a handle of its own,
   * or the offloaded copy.
   */
  async withHandle<T>(use: (handle: SegmentSource) => Promise<T>): Promise<T> {
    if (this.#appendable) return this.#withWriter(use);
    if (this.#offloaded !== null) return use(this.#offloaded);
    if (this.#readHandles !== null) return this.#withKeptReader(use);
    let handle: FileHandle;
    try {
      handle = await open(this.logPath, 'r');
    } catch (error) {
      // Offloaded between the check above and the open.
      if (isErrno(error, 'ENOENT') && this.#offloaded !== null) return use(this.#offloaded);
      throw error;
    }
    try {
      return await use(handle);
    } finally {
      await handle.close();
    }
  }

  /** {@link withHandle} for a sealed local log, through the read handle kept open for it. */
  async #withKeptReader<T>(use: (handle: SegmentSource) => Promise<T>): Promise<T> {
    let reader = this.#reader;
    if (reader === null) {
      reader = { handle: open(this.logPath, 'r'), users: 0 };
      this.#reader = reader;
    }
    this.#readHandles?.touch(this);
    reader.users++;
    let handle: FileHandle;
    try {
      handle = await reader.handle;
    } catch (error) {
      reader.users--;
      if (this.#reader === reader) {
        this.#reader = null;
        this.#readHandles?.forget(this);
      }
      // Offloaded between the check in withHandle and the open.
      if (isErrno(error, 'ENOENT') && this.#offloaded !== null) return use(this.#offloaded);
      throw error;
    }
    try {
      return await use(handle);
    } finally {
      reader.users--;
      // Closed meanwhile (evicted, offloaded or removed): the last user closes it.
      if (this.#reader !== reader && reader.users === 0) await handle.close();
    }
  }

  /**
   * Stops keeping a read handle for this segment (it is being removed, or its shard closed) and
   * closes the one kept, so that no read still under way leaves one open behind.
   */
  async retireReader(): Promise<void> {
    const closing = this.closeReader();
    this.#readHandles = null;
    await closing;
  }

  /** Closes the kept read handle, at once or when the reads using it are done. */
  async closeReader(): Promise<void> {
    const reader = this.#reader;
    if (reader === null) return;
    this.#reader = null;
    this.#readHandles?.forget(this);
    if (reader.users > 0) return;
    let handle: FileHandle;
    try {
      handle = await reader.handle;
    } catch {
      return;
    }
    await handle.close();
  }

  /**
   * Drops the local log of this sealed segment, whose copy `source` reads: the marker goes first
   * (atomically), so a crash in between leaves the log and a marker, which recovery resolves by
   * keeping the log. The caller syncs the directory.
   */
  async offload(source: SegmentSource): Promise<void> {
    await writeOffloadedMarker(this.offloadedPath, {
      size: this.size,
      endOffset: this.endOffset,
      maxTimestamp: this.maxTimestamp,
      lastBatchRelative: this.lastBatchRelative,
    });
    this.#offloaded = source;
    await this.closeReader();
    await removeFile(this.logPath);
  }

  /** Sets up an offloaded segment found by recovery from its marker. */
  restoreOffloaded(marker: OffloadedMarker, source: SegmentSource): void {
    this.size = marker.size;
    this.endOffset = marker.endOffset;
    this.maxTimestamp = marker.maxTimestamp;
    this.lastBatchRelative = marker.lastBatchRelative;
    this.#offloaded = source;
  }

  /** Appends frames at the end of the log (the active segment only), leaving them in the OS cache. */
  write(buffers: Uint8Array[], bytes: number): Promise<void> {
    return this.#writePlain(buffers, this.size, bytes);
  }

  /** Writes through the appending handle at `position`, without syncing; then grows the size. */
  async #writePlain(buffers: Uint8Array[], position: number, grow: number): Promise<void> {
    if (!this.#appendable) throw new Error(`segment ${this.logPath} is not open for appending`);
    this.#writerUsers++;
    try {
      await writeAll(this.#currentWriter() ?? (await this.#reopenWriter()), buffers, position);
    } finally {
      this.#writerUsers--;
      this.#doneWithHandle();
    }
    this.size += grow;
    this.#plainWrites++;
  }

  /**
   * Appends frames and returns once they are durable, as is everything before them once the
   * durable writes started earlier have returned too. The bytes are placed at once, so the next
   * durable write can start before this one returns (the caller waits for them in order). When no
   * bytes written otherwise are waiting for a sync this is one write through an O_DSYNC handle of
   * its own (the write and the sync of its range in one system call; a handle per write under way,
   * so that a write-back error is reported to each of them); otherwise a write, then fdatasync of
   * the whole file.
   */
  async writeDurably(buffers: Uint8Array[], bytes: number): Promise<void> {
    if (!this.#appendable) throw new Error(`segment ${this.logPath} is not open for appending`);
    const position = this.size;
    this.size += bytes;
    if (this.#plainWritesSynced < this.#plainWrites || DSYNC_WRITE_FLAGS === null) {
      await this.#writePlain(buffers, position, 0);
      await this.datasync();
      return;
    }
    this.#syncWriting++;
    try {
      let handle = this.#idleSyncWriters.pop();
      if (handle === undefined) handle = await this.#openLog(DSYNC_WRITE_FLAGS);
      else this.#writeHandles?.use(this);
      try {
        await writeAll(handle, buffers, position);
      } finally {
        // Kept for the next durable write; closed when sealed, or released while idle.
        this.#idleSyncWriters.push(handle);
      }
    } finally {
      this.#syncWriting--;
      this.#doneWithHandle();
    }
  }

  /** Makes every write that returned before this call durable. */
  async datasync(): Promise<void> {
    if (!this.#appendable) throw new Error(`segment ${this.logPath} is not open for appending`);
    // A sync of handles released for the budget may still be under way: its outcome counts too.
    if (this.#releasing !== null) await this.#releasing;
    if (this.#releaseError !== null) throw this.#releaseError;
    const covered = this.#plainWrites;
    // Nothing unsynced, and no handle open to sync through: opening one only to sync is needless.
    if (this.#writer === null && this.#plainWritesSynced >= covered) return;
    await this.#withWriter((writer) => writer.datasync());
    this.#plainWritesSynced = Math.max(this.#plainWritesSynced, covered);
  }

  /** Cuts the log back to `size` bytes and makes that durable. */
  async truncate(size: number): Promise<void> {
    if (this.#appendable) {
      await this.#withWriter((writer) => writer.truncate(size));
      // The cut itself must reach the disk, whatever was synced before.
      this.#plainWrites++;
      await this.datasync();
    } else {
      const handle = await open(this.logPath, 'r+');
      try {
        await handle.truncate(size);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    }
    this.size = size;
  }

  /**
   * When the first batch was appended to this log, for a non-empty active segment after a restart.
   * Frames keep no append time, so this is the first frame's max timestamp (the producer's or the
   * broker's time of that append, in the usual case) kept between the file's birth (the roll that
   * made it) and its last modification (the last append), which bound the first append whatever
   * the records were stamped with. Filesystems that keep no birth time give the last modification
   * as the earliest bound instead.
   */
  async estimateFirstAppend(): Promise<number> {
    const { birthtimeMs, mtimeMs } = await stat(this.logPath);
    // Without a birth time Node reports 0, or the change time, which comes after the last write.
    const earliest = birthtimeMs > 0 && birthtimeMs <= mtimeMs ? birthtimeMs : mtimeMs;
    const first = readFrameHeader(await this.withHandle((h) => readAt(h, 0, FRAME_HEADER_BYTES)), 0);
    if (first === null) return earliest;
    return Math.min(Math.max(first.maxTimestamp, earliest), mtimeMs);
  }

  /** Records a batch just written at `position` in the in-memory indexes. */
  noteBatch(
    header: Pick<FrameHeader, 'baseOffset' | 'recordCount' | 'maxTimestamp'>,
    position: number,
    bytes: number,
    indexIntervalBytes: number,
  ): void {
    const relative = header.baseOffset - this.baseOffset;
    if (header.maxTimestamp > this.maxTimestamp) this.maxTimestamp = header.maxTimestamp;
    if (
      this.#bytesSinceIndexEntry >= indexIntervalBytes &&
      this.#index !== null &&
      this.#timeIndex !== null
    ) {
      this.#index.append(relative, position);
      this.#timeIndex.append(this.maxTimestamp, relative);
      this.#bytesSinceIndexEntry = 0;
    }
    this.#bytesSinceIndexEntry += bytes;
    this.lastBatchRelative = relative;
    this.endOffset = header.baseOffset + header.recordCount;
  }

  /**
   * Rebuilds the state and indexes from the log up to `size` (from the start, or on from what is
   * loaded), going on past damaged frames to the next whole frame: the frames after damage may
   * have been acknowledged, so they stay readable, and reads of the offsets lost in between fail
   * CORRUPT. With `zerosEnd`, zeros before the next frame end the scan instead (in the last
   * segment they are appends not yet written when the process died). Returns where the scan ended
   * and the ranges lost.
   */
  async rebuildPastDamage(
    handle: SegmentSource,
    size: number,
    indexIntervalBytes: number,
    options: { from: 'start' | 'loaded'; zerosEnd: boolean },
  ): Promise<{ result: ScanResult; lost: LostRange[] }> {
    const lost: LostRange[] = [];
    let scan =
      options.from === 'start'
        ? await this.rebuild(handle, size, indexIntervalBytes)
        : await this.rebuildOn(handle, size, indexIntervalBytes);
    while (scan.kind === 'bad') {
      const next = await findFrameAfterDamage(handle, scan.position, size, scan.nextOffset);
      if (next === null || (options.zerosEnd && next.zerosBefore)) break;
      lost.push({
        position: scan.position,
        bytes: next.position - scan.position,
        fromOffset: scan.nextOffset,
        toOffset: next.header.baseOffset,
        reason: scan.reason,
      });
      this.skipDamage(next.position, next.header.baseOffset);
      scan = await this.rebuildOn(handle, size, indexIntervalBytes);
    }
    return { result: scan, lost };
  }

  /**
   * Goes on, in a rebuild, after damaged bytes: the frames resume at `position` with offset
   * `baseOffset`. The next frame gets index entries of its own, so reads of it and after it start
   * there and never scan through the damage.
   */
  skipDamage(position: number, baseOffset: number): void {
    this.size = position;
    this.endOffset = baseOffset;
    this.#bytesSinceIndexEntry = Infinity;
  }

  /** Writes both index files (atomically, fsynced), ending the time index on the last batch. */
  async writeIndexes(): Promise<void> {
    const time = this.timeIndex;
    const last = time.length - 1;
    if (!this.isEmpty && (last < 0 || time.relativeOffsetAt(last) !== this.lastBatchRelative)) {
      time.append(this.maxTimestamp, this.lastBatchRelative);
    }
    await writeFileAtomic(this.indexPath, this.index.bytes());
    await writeFileAtomic(this.timeIndexPath, time.bytes());
  }

  /**
   * Stops appending: the appending handle is closed once in-flight reads on it are done. Reads
   * after this open their own handle.
   */
  async closeWriter(): Promise<void> {
    if (!this.#appendable) return;
    this.#appendable = false;
    if (this.#writerUsers > 0 || this.#syncWriting > 0) {
      await new Promise<void>((resolve) => {
        this.#onWriterIdle = resolve;
      });
    }
    const writer = this.#writer;
    const handles = this.#idleSyncWriters.splice(0);
    this.#writer = null;
    if (writer !== null) handles.push(writer);
    if (this.#releasing !== null) await this.#releasing;
    try {
      for (const handle of handles) await handle.close();
    } finally {
      this.#writeHandles?.closed(this, handles.length);
    }
  }

  /** Drops the in-memory indexes of a sealed segment; {@link loadIndexes} brings them back. */
  unloadIndexes(): void {
    if (this.#appendable) return;
    this.#index = null;
    this.#timeIndex = null;
  }

  /**
   * Loads the index files of a sealed segment, checking them against the log; stale or missing
   * ones are rebuilt from the log and rewritten. Reads that ask while a load is under way share it.
   * Resolves with the indexes, which stay valid for the caller even if the index cache unloads
   * them from the segment meanwhile.
   */
  loadIndexes(indexIntervalBytes: number): Promise<SegmentIndexes> {
    if (this.#index !== null && this.#timeIndex !== null) {
      return Promise.resolve({ index: this.#index, timeIndex: this.#timeIndex });
    }
    this.#loadingIndexes ??= this.#loadIndexes(indexIntervalBytes).finally(() => {
      this.#loadingIndexes = null;
    });
    return this.#loadingIndexes;
  }

  async #loadIndexes(indexIntervalBytes: number): Promise<SegmentIndexes> {
    const index = await readOptional(this.indexPath);
    const time = await readOptional(this.timeIndexPath);
    if (
      index !== null &&
      time !== null &&
      index.length % OffsetIndex.ENTRY_BYTES === 0 &&
      time.length % TimeIndex.ENTRY_BYTES === 0
    ) {
      const offsetIndex = new OffsetIndex(index);
      const timeIndex = new TimeIndex(time);
      const lastTime = timeIndex.length - 1;
      const sound =
        offsetIndex.isConsistent(this.size) &&
        timeIndex.isConsistent() &&
        (this.isEmpty
          ? timeIndex.length === 0 && offsetIndex.length === 0
          : lastTime >= 0 && timeIndex.relativeOffsetAt(lastTime) === this.lastBatchRelative);
      if (sound) {
        this.#index = offsetIndex;
        this.#timeIndex = timeIndex;
        return { index: offsetIndex, timeIndex };
      }
    }
    return this.rebuildIndexes(indexIntervalBytes);
  }

  /**
   * Rebuilds the indexes from the log, ignoring the index files; a sealed segment's are rewritten,
   * the active segment's stay in memory (its files are written when it is sealed). The rebuild
   * fills a scratch segment: reads go on meanwhile with this one's extent, and a rebuild that fails
   * (the log unreadable, or its offloaded copy out of reach) changes nothing. The active segment's
   * caller holds off appends meanwhile.
   */
  async rebuildIndexes(indexIntervalBytes: number): Promise<SegmentIndexes> {
    const scratch = new Segment(dirname(this.logPath), this.baseOffset);
    const { result } = await this.withHandle((handle) =>
      scratch.rebuildPastDamage(handle, this.size, indexIntervalBytes, { from: 'start', zerosEnd: false }),
    );
    // The extent known (from recovery, or the offload marker) stays: a damaged copy read here must
    // not make the segment look empty or older than it is.
    const rebuilt = { index: scratch.index, timeIndex: scratch.timeIndex };
    this.#index = rebuilt.index;
    this.#timeIndex = rebuilt.timeIndex;
    this.#indexesRebuilt = true;
    if (this.#appendable) {
      this.#bytesSinceIndexEntry = scratch.#bytesSinceIndexEntry;
      return rebuilt;
    }
    if (result.kind === 'bad') this.damagedAt = result.position;
    await this.writeIndexes();
    return rebuilt;
  }

  /**
   * Rebuilds the in-memory state and indexes by reading every frame up to `size`, checking each
   * checksum. Returns where and why the scan ended; the state covers the frames before that.
   */
  async rebuild(handle: SegmentSource, size: number, indexIntervalBytes: number): Promise<ScanResult> {
    this.#index = new OffsetIndex();
    this.#timeIndex = new TimeIndex();
    this.#bytesSinceIndexEntry = 0;
    this.maxTimestamp = -Infinity;
    this.lastBatchRelative = -1;
    this.endOffset = this.baseOffset;
    this.size = 0;
    return this.rebuildOn(handle, size, indexIntervalBytes);
  }

  /**
   * Extends the in-memory state and indexes, loaded up to the current size, by reading every frame
   * from there up to `size`, checking each checksum. Returns where and why the scan ended.
   */
  async rebuildOn(handle: SegmentSource, size: number, indexIntervalBytes: number): Promise<ScanResult> {
    const result = await scanFrames(
      handle,
      {
        from: this.size,
        to: size,
        expectedBase: this.endOffset,
        readAhead: SCAN_READ_AHEAD,
        verifyAll: false,
      },
      () => 'take',
      (header, position) =>
        this.noteBatch(header, position, frameBytes(header.dataLength), indexIntervalBytes),
    );
    this.size = result.position;
    return result;
  }

  /**
   * Checks, cheaply, that the index files agree with the log: their sizes, their last entries,
   * and that the frames after the last offset-index entry lead exactly to the end of the file and
   * to the batch the time index ends on. Fills in size, end offset and newest timestamp. With
   * `loadIntoMemory`, also loads the indexes (for an active segment after a clean shutdown).
   */
  async checkIndexes(
    handle: SegmentSource,
    fileSize: number,
    indexIntervalBytes: number,
    loadIntoMemory: boolean,
  ): Promise<boolean> {
    const [indexStat, timeStat] = await Promise.all([
      statOptional(this.indexPath),
      statOptional(this.timeIndexPath),
    ]);
    if (indexStat === null || timeStat === null) return false;
    if (indexStat % OffsetIndex.ENTRY_BYTES !== 0 || timeStat % TimeIndex.ENTRY_BYTES !== 0) return false;
    if (fileSize === 0) {
      if (indexStat !== 0 || timeStat !== 0) return false;
      this.size = 0;
      this.endOffset = this.baseOffset;
      if (loadIntoMemory) {
        this.#index = new OffsetIndex();
        this.#timeIndex = new TimeIndex();
        this.#bytesSinceIndexEntry = 0;
      }
      return true;
    }
    if (timeStat === 0) return false;

    let lastRelative = 0;
    let lastPosition = 0;
    if (indexStat > 0) {
      const entry = await readTail(this.indexPath, OffsetIndex.ENTRY_BYTES);
      lastRelative = entry.readUInt32BE(0);
      lastPosition = entry.readUInt32BE(4);
      if (lastPosition >= fileSize) return false;
    }
    const timeEntry = await readTail(this.timeIndexPath, TimeIndex.ENTRY_BYTES);
    const newest = timeEntry.readDoubleBE(0);
    const timeLastRelative = timeEntry.readUInt32BE(8);

    let lastBatch = -1;
    let newestSeen = -Infinity;
    const walk = await scanFrames(
      handle,
      {
        from: lastPosition,
        to: fileSize,
        expectedBase: this.baseOffset + lastRelative,
        readAhead: 64 * 1024,
        verifyAll: false,
      },
      (header) => {
        lastBatch = header.baseOffset - this.baseOffset;
        newestSeen = Math.max(newestSeen, header.maxTimestamp);
        return 'skip';
      },
    );
    if (
      walk.kind !== 'end' ||
      lastBatch !== timeLastRelative ||
      newestSeen > newest ||
      !Number.isFinite(newest)
    )
      return false;

    this.size = fileSize;
    this.endOffset = walk.nextOffset;
    this.maxTimestamp = newest;
    this.lastBatchRelative = lastBatch;
    if (loadIntoMemory) {
      const index = new OffsetIndex(await readFile(this.indexPath));
      const time = new TimeIndex(await readFile(this.timeIndexPath));
      if (!index.isConsistent(fileSize) || !time.isConsistent()) return false;
      this.#index = index;
      this.#timeIndex = time;
      this.#bytesSinceIndexEntry = fileSize - lastPosition;
    }
    return true;
  }

  /**
   * Removes the segment's files (the caller has stopped using it). The marker of an offloaded
   * segment goes first: without it, recovery sees no segment, only orphan indexes.
   */
  async remove(): Promise<void> {
    await this.closeWriter();
    await this.retireReader();
    await removeFile(this.offloadedPath);
    await removeFile(this.logPath);
    await removeFile(this.indexPath);
    await removeFile(this.timeIndexPath);
  }
}

async function readOptional(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch {
    return null;
  }
}

async function statOptional(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

async function readTail(path: string, bytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    return await readAt(handle, size - bytes, bytes);
  } finally {
    await handle.close();
  }
}

/** A segment's offset and time indexes, as loaded together. */
export interface SegmentIndexes {
  index: OffsetIndex;
  timeIndex: TimeIndex;
}

/** Offsets `fromOffset` up to `toOffset` lost to damage in `bytes` bytes at `position`. */
export interface LostRange {
  position: number;
  bytes: number;
  fromOffset: number;
  toOffset: number;
  reason: string | undefined;
}
