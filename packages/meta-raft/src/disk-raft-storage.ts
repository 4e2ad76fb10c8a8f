// The Raft node's durable state on local disk: the log, the hard state and the latest snapshot.
import { fdatasync, fdatasyncSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { constants, mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { Logger } from '@robustmq/core';
import { ErrorCode, RobustMQError, silentLogger } from '@robustmq/core';
import { ByteReader, ByteWriter } from './bytes.js';
import { syncDirectory, writeAll, writeAllSync } from './fs-util.js';
import { MemoryRaftStorage } from './raft/storage.js';
import type { RaftStorage } from './raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from './raft/types.js';
import { readSnapshotFile, writeSnapshotFile } from './snapshot-file.js';

const LOG_FILE = 'raft.log';
const STATE_FILE = 'raft.state';
const SNAPSHOT_FILE = 'raft.snapshot';

// Log record: u32 payload length, u32 CRC32C over (length bytes ‖ payload), then the payload:
// u64 index ‖ u64 term ‖ u8 type ‖ data. The CRC covers the length so a damaged length is caught.
const RECORD_HEADER = 8;
const ENTRY_HEADER = 17;
const MAX_ENTRY_BYTES = 64 * 1024 * 1024;
// The log file is grown ahead of its data by this much, in zeros: an fdatasync after overwriting
// blocks the file already has need not commit a new size to the file system's journal, which costs
// several times the data write. The zeros after the last entry read back as the clean end of the log.
const PREALLOCATE_BYTES = 2 * 1024 * 1024;
const ZEROS = new Uint8Array(256 * 1024);

// Hard state: two fixed slots, each u32 CRC32C ‖ u64 sequence ‖ u64 term ‖ u64 vote ‖ u64 commit.
// A synced write goes to the slot not holding the last synced state, which then becomes it; an
// unsynced write (only the commit changed) also goes to that other slot. So the last synced term
// and vote are never overwritten until a newer synced state is durable: a crash may lose or tear
// unsynced writes, costing only a commit index, which need not be durable.
const SLOT_BYTES = 36;

const TYPE_NORMAL = 0;
const TYPE_CONF = 1;

export interface DiskRaftStorageOptions {
  /** Directory holding `raft.log`, `raft.state` and `raft.snapshot`; created if missing. */
  dir: string;
  logger?: Logger;
}

/**
 * {@link RaftStorage} on local disk. Reads are served from memory; the write methods resolve once
 * the change is written (and, when asked, fsync'ed). Appends and hard-state writes are done with
 * blocking system calls: the Raft loop has nothing to do until they are durable, and a trip through
 * libuv's thread pool for the write and another for the fsync cost more than the calls themselves.
 * Snapshot files and log rewrites stay asynchronous.
 * - the log is one file of entries framed with their length and CRC32C; replacing a suffix cuts the
 *   file at the first replaced entry;
 * - the hard state alternates between two checksummed slots, so a torn write leaves the previous one;
 * - the snapshot is written to a temporary file, fsync'ed and renamed over the old one;
 * - compaction rewrites the log without the compacted entries, the same way.
 *
 * Opening cuts a torn or damaged log tail at the last good entry, with a warning.
 */
export class DiskRaftStorage implements RaftStorage {
  /** Byte offset in the log file of each stored entry, by `index - firstIndex()`. */
  private offsets: number[] = [];
  private stateSequence: number;
  /** The slot holding the last synced hard state; every write goes to the other one. */
  private syncedSlot: number;
  private snapshotWrites: Promise<void> = Promise.resolve();
  /**
   * Settles once the log file operations queued so far (background syncs, truncations, the swap
   * to a rewritten file) are done: they run one after another, so a sync never meets a descriptor
   * being closed.
   */
  private logTail: Promise<void> = Promise.resolve();
  /**
   * The last index known durable in the log file (-1: not known yet, taken as the last index). The
   * hard state written to disk never claims a commit above it, so after a crash that loses
   * entries appended without `sync`, the stored commit index still points into the stored log.
   */
  private synced = -1;
  /** The commit index the hard state on disk holds (see `synced`). */
  private storedCommit = 0;

  private constructor(
    private readonly memory: MemoryRaftStorage,
    private log: FileHandle,
    private logEnd: number,
    /** The log file's size: `logEnd` and then zeros. */
    private logAllocated: number,
    private readonly state: FileHandle,
    stateSequence: number,
    newestSlot: number,
    private readonly dir: string,
  ) {
    this.stateSequence = stateSequence;
    this.syncedSlot = newestSlot;
  }

  /** Opens (creating and recovering as needed) the storage in `options.dir`. */
  static async open(options: DiskRaftStorageOptions): Promise<DiskRaftStorage> {
    const logger = (options.logger ?? silentLogger).child({ component: 'raft-storage' });
    const dir = options.dir;
    await mkdir(dir, { recursive: true });
    const memory = new MemoryRaftStorage();

    const snapshotFile = await readSnapshotFile(join(dir, SNAPSHOT_FILE));
    if (snapshotFile !== null) memory.applySnapshot(decodeSnapshot(snapshotFile.index, snapshotFile.data));

    const { handle: state, bytes: stateBytes } = await openFile(join(dir, STATE_FILE));
    const { sequence, slot, hardState } = readHardState(stateBytes);
    if (hardState !== null) memory.setHardState(hardState);

    const logPath = join(dir, LOG_FILE);
    const { handle: log, bytes } = await openFile(logPath);
    const scan = scanEntries(bytes);
    const storage = new DiskRaftStorage(memory, log, scan.end, bytes.length, state, sequence, slot, dir);
    try {
      // The newest slot may hold an unsynced write that outlived only this process: make it
      // durable, since later writes must not overwrite it until a newer state is synced.
      await state.datasync();
      if (scan.problem !== null) {
        logger.warn(
          { file: logPath, offset: scan.end, droppedBytes: bytes.length - scan.end, reason: scan.problem },
          'raft log cut at its last good entry',
        );
        await storage.truncateLog(scan.end);
      }
      await storage.loadEntries(scan.entries, scan.offsets, logger);
    } catch (error) {
      await storage.close();
      throw error;
    }
    logger.info(
      {
        dir,
        snapshotIndex: memory.snapshot().metadata.index,
        firstIndex: memory.firstIndex(),
        lastIndex: memory.lastIndex(),
        term: memory.hardState().term,
      },
      'raft storage opened',
    );
    return storage;
  }

  /** Whether the storage holds nothing yet: a node that has never been part of a group. */
  isEmpty(): boolean {
    return this.memory.snapshot().metadata.index === 0 && this.memory.lastIndex() === 0;
  }

  /**
   * Makes an empty storage a founding member of a new group: a snapshot at index 1, term 1 with the
   * initial membership and `data` (the application's empty state), as `MemoryRaftStorage.bootstrap`.
   */
  async bootstrap(conf: ConfState, data: Uint8Array): Promise<void> {
    if (!this.isEmpty()) {
      throw new RobustMQError(ErrorCode.InvalidArgument, `raft storage in ${this.dir} is not empty`);
    }
    await this.applySnapshot({ metadata: { index: 1, term: 1, conf }, data });
    await this.setHardState({ term: 1, vote: 0, commit: 1 });
  }

  hardState(): HardState {
    return this.memory.hardState();
  }

  snapshot(): Snapshot {
    return this.memory.snapshot();
  }

  firstIndex(): number {
    return this.memory.firstIndex();
  }

  lastIndex(): number {
    return this.memory.lastIndex();
  }

  term(index: number): number | undefined {
    return this.memory.term(index);
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.memory.entries(lo, hi, maxBytes);
  }

  /**
   * Writes the hard state; `sync` makes it durable before resolving, needed whenever the term or
   * vote changed. Without `sync` only the commit index may differ from the last synced state.
   */
  setHardState(hardState: HardState, sync = true): Promise<void> {
    try {
      this.writeHardState(hardState, sync);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private writeHardState(hardState: HardState, sync: boolean): void {
    const durable = this.memory.hardState();
    if (!sync && (hardState.term !== durable.term || hardState.vote !== durable.vote)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        'raft hard state: a changed term or vote must be synced',
      );
    }
    const sequence = this.stateSequence + 1;
    const slotIndex = 1 - this.syncedSlot;
    const slot = Buffer.alloc(SLOT_BYTES);
    writeU64(slot, 4, sequence);
    writeU64(slot, 12, hardState.term);
    writeU64(slot, 20, hardState.vote);
    const commit = Math.min(hardState.commit, this.syncedIndex());
    writeU64(slot, 28, commit);
    slot.writeUInt32BE(crc32c(slot.subarray(4)), 0);
    writeAllSync(this.state.fd, slot, slotIndex * SLOT_BYTES);
    if (sync) {
      fdatasyncSync(this.state.fd);
      this.syncedSlot = slotIndex;
    }
    this.stateSequence = sequence;
    this.storedCommit = commit;
    this.memory.setHardState(hardState);
  }

  /**
   * Appends `entries`, first cutting any stored entries from the first one's index on. `sync`
   * makes them durable before resolving.
   */
  async append(entries: readonly Entry[], sync = true): Promise<void> {
    const fresh = entries.filter((entry) => entry.index > this.memory.firstIndex() - 1);
    const first = fresh[0];
    if (first === undefined) return;
    this.memory.append(fresh);
    const keep = first.index - this.memory.firstIndex();
    if (keep < this.offsets.length) {
      await this.truncateLog(this.offsets[keep]!);
      this.offsets.length = keep;
      this.synced = Math.min(this.syncedIndex(), first.index - 1);
    }
    const buffer = encodeEntries(fresh, this.logEnd, this.offsets);
    this.preallocate(this.logEnd + buffer.length);
    writeAllSync(this.log.fd, buffer, this.logEnd);
    this.logEnd += buffer.length;
    if (sync) {
      fdatasyncSync(this.log.fd);
      this.synced = this.memory.lastIndex();
    } else {
      this.synced = Math.min(this.syncedIndex(), first.index - 1);
    }
  }

  /**
   * Makes durable what was appended without `sync`, in the thread pool so the event loop goes on
   * meanwhile; entries appended while it runs may or may not be covered.
   */
  syncLog(): Promise<void> {
    const upTo = this.memory.lastIndex();
    return this.onLog(
      () =>
        new Promise<void>((resolve, reject) => {
          fdatasync(this.log.fd, (error) => {
            if (error !== null) return reject(error);
            // A truncation runs after this sync, so `upTo` still names entries the file holds.
            this.synced = Math.max(this.syncedIndex(), upTo);
            // The commit index held back from the disk for want of this sync goes there now, so
            // a reopened node replays everything it had applied before it serves.
            const hardState = this.memory.hardState();
            try {
              if (hardState.commit > this.storedCommit) this.writeHardState(hardState, false);
            } catch (failure) {
              return reject(failure instanceof Error ? failure : new Error(String(failure)));
            }
            resolve();
          });
        }),
    );
  }

  /** Runs `operation` on the log file once the ones queued before it are done (see `logTail`). */
  private onLog<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.logTail.then(operation);
    this.logTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Replaces everything with a snapshot received from the leader (older ones are ignored). */
  async applySnapshot(snapshot: Snapshot): Promise<void> {
    if (snapshot.metadata.index <= this.memory.snapshot().metadata.index) return;
    await this.writeSnapshot(snapshot);
    this.memory.applySnapshot(snapshot);
    await this.rewriteLog();
  }

  /**
   * Records (durably) a snapshot the host took of its state machine at `index`, with the membership
   * in force there. The log is kept; {@link compact} trims it once this resolves. The snapshot is
   * served to the node at once, and other writes may go on while its file is written.
   */
  async createSnapshot(index: number, conf: ConfState, data: Uint8Array): Promise<Snapshot> {
    const previous = this.memory.snapshot();
    const snapshot = this.memory.createSnapshot(index, conf, data);
    if (snapshot !== previous) await this.writeSnapshot(snapshot);
    return snapshot;
  }

  /** Drops the entries up to `index`, which the latest snapshot must cover, and rewrites the log. */
  async compact(index: number): Promise<void> {
    if (index < this.memory.firstIndex()) return;
    this.memory.compact(index);
    await this.rewriteLog();
  }

  async close(): Promise<void> {
    await this.snapshotWrites;
    await this.logTail;
    await Promise.allSettled([this.log.close(), this.state.close()]);
  }

  /** Writes the snapshot file; writes run one at a time, in call order, as they share a temp file. */
  private writeSnapshot(snapshot: Snapshot): Promise<void> {
    const write = this.snapshotWrites.then(() =>
      writeSnapshotFile(join(this.dir, SNAPSHOT_FILE), {
        index: snapshot.metadata.index,
        data: encodeSnapshot(snapshot),
      }),
    );
    this.snapshotWrites = write.catch(() => undefined);
    return write;
  }

  /** Writes the stored entries to a new log file, fsync'ed, and renames it over the old one. */
  private async rewriteLog(): Promise<void> {
    const path = join(this.dir, LOG_FILE);
    const temporary = `${path}.tmp`;
    const first = this.memory.firstIndex();
    const last = this.memory.lastIndex();
    const offsets: number[] = [];
    const buffer =
      last >= first ? encodeEntries(this.memory.entries(first, last + 1), 0, offsets) : Buffer.alloc(0);
    const handle = await open(temporary, 'w', 0o644);
    try {
      await writeAll(handle, buffer, 0);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await syncDirectory(this.dir);
    await this.onLog(async () => {
      await this.log.close();
      this.log = await open(path, constants.O_RDWR);
    });
    this.logEnd = buffer.length;
    this.logAllocated = buffer.length;
    this.offsets = offsets;
    this.synced = this.memory.lastIndex();
  }

  /** Grows the log file with zeros, well past `end` once it would pass the end of the file. */
  private preallocate(end: number): void {
    if (end <= this.logAllocated) return;
    const target = end + PREALLOCATE_BYTES;
    for (let at = this.logAllocated; at < target; at += ZEROS.length) {
      writeAllSync(this.log.fd, ZEROS.subarray(0, Math.min(ZEROS.length, target - at)), at);
    }
    this.logAllocated = target;
  }

  /** See `synced`. */
  private syncedIndex(): number {
    return this.synced < 0 ? this.memory.lastIndex() : this.synced;
  }

  private async truncateLog(offset: number): Promise<void> {
    await this.onLog(async () => {
      await this.log.truncate(offset);
      await this.log.datasync();
    });
    this.logEnd = offset;
    this.logAllocated = offset;
  }

  /**
   * Takes the recovered log entries that follow the snapshot. Entries from before a snapshot
   * installed from the leader (left by a crash before the log was rewritten) are dropped unless
   * they continue the snapshot: their history may differ from the leader's.
   */
  private async loadEntries(entries: Entry[], offsets: number[], logger: Logger): Promise<void> {
    const snapshot = this.memory.snapshot().metadata;
    const at = entries.findIndex((entry) => entry.index > snapshot.index);
    if (at < 0) {
      if (entries.length > 0) await this.rewriteLog();
      return;
    }
    const previous = entries[at - 1];
    const continues =
      entries[at]!.index === snapshot.index + 1 &&
      (previous === undefined ? at === 0 : previous.term === snapshot.term);
    if (!continues) {
      logger.warn(
        { snapshotIndex: snapshot.index, firstLogIndex: entries[0]!.index },
        'raft log does not continue the snapshot; dropping it',
      );
      await this.rewriteLog();
      return;
    }
    this.memory.append(entries.slice(at));
    this.offsets = offsets.slice(at);
  }
}

async function openFile(path: string): Promise<{ handle: FileHandle; bytes: Buffer }> {
  let handle: FileHandle;
  let created = false;
  try {
    handle = await open(path, constants.O_RDWR);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
    created = true;
  }
  try {
    if (created) {
      await syncDirectory(join(path, '..'));
      return { handle, bytes: Buffer.alloc(0) };
    }
    return { handle, bytes: await handle.readFile() };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

function writeU64(buffer: Buffer, position: number, value: number): void {
  buffer.writeUInt32BE(Math.floor(value / 2 ** 32), position);
  buffer.writeUInt32BE(value % 2 ** 32, position + 4);
}

function readU64(buffer: Buffer, position: number): number {
  return buffer.readUInt32BE(position) * 2 ** 32 + buffer.readUInt32BE(position + 4);
}

/** The newer of the two valid hard state slots (none, and slot 0, for a new node). */
function readHardState(bytes: Buffer): { sequence: number; slot: number; hardState: HardState | null } {
  let best: { sequence: number; slot: number; hardState: HardState | null } = {
    sequence: 0,
    slot: 0,
    hardState: null,
  };
  for (let slot = 0; slot < 2; slot++) {
    const start = slot * SLOT_BYTES;
    if (bytes.length < start + SLOT_BYTES) break;
    const data = bytes.subarray(start, start + SLOT_BYTES);
    if (crc32c(data.subarray(4)) !== data.readUInt32BE(0)) continue;
    const sequence = readU64(data, 4);
    if (sequence > best.sequence) {
      best = {
        sequence,
        slot,
        hardState: { term: readU64(data, 12), vote: readU64(data, 20), commit: readU64(data, 28) },
      };
    }
  }
  return best;
}

/** Frames `entries` as log records; pushes each record's file offset (from `base`) to `offsets`. */
function encodeEntries(entries: readonly Entry[], base: number, offsets: number[]): Buffer {
  let total = 0;
  for (const entry of entries) total += RECORD_HEADER + ENTRY_HEADER + entry.data.length;
  const buffer = Buffer.allocUnsafe(total);
  let position = 0;
  for (const entry of entries) {
    offsets.push(base + position);
    const payloadLength = ENTRY_HEADER + entry.data.length;
    buffer.writeUInt32BE(payloadLength, position);
    const payload = position + RECORD_HEADER;
    writeU64(buffer, payload, entry.index);
    writeU64(buffer, payload + 8, entry.term);
    buffer.writeUInt8(entry.type === 'conf' ? TYPE_CONF : TYPE_NORMAL, payload + 16);
    buffer.set(entry.data, payload + ENTRY_HEADER);
    const crc = crc32c(
      buffer.subarray(payload, payload + payloadLength),
      crc32c(buffer.subarray(position, position + 4)),
    );
    buffer.writeUInt32BE(crc, position + 4);
    position = payload + payloadLength;
  }
  return buffer;
}

/** The well-framed, consecutive entries from the start of `bytes`, where they end, and why scanning stopped. */
export function scanEntries(bytes: Buffer): {
  entries: Entry[];
  offsets: number[];
  end: number;
  problem: string | null;
} {
  const entries: Entry[] = [];
  const offsets: number[] = [];
  let position = 0;
  const stop = (problem: string) => ({ entries, offsets, end: position, problem });
  while (position < bytes.length) {
    if (allZero(bytes, position)) break;
    if (bytes.length - position < RECORD_HEADER) return stop('torn tail: incomplete record header');
    const payloadLength = bytes.readUInt32BE(position);
    if (payloadLength < ENTRY_HEADER || payloadLength > ENTRY_HEADER + MAX_ENTRY_BYTES)
      return stop(`bad record length ${payloadLength}`);
    const payloadStart = position + RECORD_HEADER;
    const payloadEnd = payloadStart + payloadLength;
    if (payloadEnd > bytes.length) return stop('torn tail: record runs past the end of the file');
    const payload = bytes.subarray(payloadStart, payloadEnd);
    if (crc32c(payload, crc32c(bytes.subarray(position, position + 4))) !== bytes.readUInt32BE(position + 4))
      return stop('checksum mismatch');
    const index = readU64(payload, 0);
    const term = readU64(payload, 8);
    const type = payload.readUInt8(16);
    const previous = entries[entries.length - 1];
    if (type !== TYPE_NORMAL && type !== TYPE_CONF) return stop(`unknown entry type ${type}`);
    if (previous !== undefined && (index !== previous.index + 1 || term < previous.term))
      return stop(`entry ${index} (term ${term}) does not follow ${previous.index} (term ${previous.term})`);
    entries.push({
      index,
      term,
      type: type === TYPE_CONF ? 'conf' : 'normal',
      data: new Uint8Array(payload.buffer, payload.byteOffset + ENTRY_HEADER, payload.length - ENTRY_HEADER),
    });
    offsets.push(position);
    position = payloadEnd;
  }
  return { entries, offsets, end: position, problem: null };
}

/** Whether the bytes from `start` on are all zero: the preallocated space after the last entry. */
function allZero(bytes: Buffer, start: number): boolean {
  // A record starts with its nonzero length: a zero first word is the only case worth scanning.
  if (bytes.length - start >= 4 && bytes.readUInt32BE(start) !== 0) return false;
  for (let at = start; at < bytes.length; at++) if (bytes[at] !== 0) return false;
  return true;
}

/** Snapshot file body: u64 term ‖ voters ‖ learners ‖ the state machine's bytes. */
function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const writer = new ByteWriter(snapshot.data.length + 64);
  const { term, conf } = snapshot.metadata;
  writer.u53(term);
  writer.u32(conf.voters.length);
  for (const id of conf.voters) writer.u53(id);
  writer.u32(conf.learners.length);
  for (const id of conf.learners) writer.u53(id);
  writer.bytes(snapshot.data);
  return writer.finish();
}

function decodeSnapshot(index: number, bytes: Uint8Array): Snapshot {
  try {
    const reader = new ByteReader(bytes, 'raft snapshot');
    const term = reader.u53();
    const voters = Array.from({ length: reader.u32() }, () => reader.u53());
    const learners = Array.from({ length: reader.u32() }, () => reader.u53());
    const data = reader.bytes();
    reader.end();
    return { metadata: { index, term, conf: { voters, learners } }, data };
  } catch (error) {
    throw new RobustMQError(ErrorCode.Corrupt, `raft snapshot: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
