// The durable side of a Raft node, as the core reads it, and an in-memory version of it.
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { EMPTY_CONF } from './conf-change.js';
import { entrySize } from './entries.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';

/**
 * What the Raft core reads from durable storage. The host writes to it while handling a `Ready`
 * (snapshot, then entries, then hard state) and when it compacts the log; the core only reads.
 * The stored log is the entries after the latest snapshot: `firstIndex()` to `lastIndex()`, with
 * `term(firstIndex() - 1)` the term of the snapshot's last entry.
 */
export interface RaftStorage {
  /** The hard state last written (all zero for a new node). */
  hardState(): HardState;
  /** The latest snapshot (index 0 and an empty membership for a new node). */
  snapshot(): Snapshot;
  /** The index of the first stored entry; `snapshot().metadata.index + 1` or more. */
  firstIndex(): number;
  /** The index of the last stored entry (`firstIndex() - 1` when there is none). */
  lastIndex(): number;
  /** The term of entry `index` for `firstIndex() - 1 <= index <= lastIndex()`, else undefined. */
  term(index: number): number | undefined;
  /**
   * Entries `[lo, hi)`, all within `firstIndex()..lastIndex()`, stopping before the total size
   * passes `maxBytes` but always at least one.
   */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
}

const EMPTY_SNAPSHOT: Snapshot = {
  metadata: { index: 0, term: 0, conf: EMPTY_CONF },
  data: new Uint8Array(0),
};

const ZERO_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };

/**
 * {@link RaftStorage} in memory, for tests and the simulation (where it plays the disk that survives
 * a crash). Besides the reads it has the writes a host makes.
 */
export class MemoryRaftStorage implements RaftStorage {
  private hard: HardState = ZERO_HARD_STATE;
  private snap: Snapshot = EMPTY_SNAPSHOT;
  /** Index and term of the entry just before `log[0]`. */
  private offset = 0;
  private offsetTerm = 0;
  private log: Entry[] = [];

  /**
   * A storage for a founding member of a new group: a snapshot at index 1, term 1 holding the
   * initial membership and `data` (the application's empty state), so that members added later
   * learn the founding membership from a snapshot.
   */
  static bootstrap(conf: ConfState, data: Uint8Array = new Uint8Array(0)): MemoryRaftStorage {
    const storage = new MemoryRaftStorage();
    storage.applySnapshot({ metadata: { index: 1, term: 1, conf }, data });
    storage.setHardState({ term: 1, vote: 0, commit: 1 });
    return storage;
  }

  hardState(): HardState {
    return this.hard;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.log.length;
  }

  term(index: number): number | undefined {
    if (index === this.offset) return this.offsetTerm;
    return this.log[index - this.offset - 1]?.term;
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1 || lo > hi) {
      throw new RobustMQError(
        ErrorCode.OffsetOutOfRange,
        `raft entries [${lo}, ${hi}) outside the stored [${this.firstIndex()}, ${this.lastIndex() + 1})`,
      );
    }
    const found: Entry[] = [];
    let size = 0;
    for (let index = lo; index < hi; index++) {
      const entry = this.log[index - this.offset - 1]!;
      size += entrySize(entry);
      if (found.length > 0 && size > maxBytes) break;
      found.push(entry);
    }
    return found;
  }

  /** Writes the hard state. */
  setHardState(state: HardState): void {
    this.hard = state;
  }

  /**
   * Appends `entries` (consecutive), first dropping any stored entries from the first one's index
   * on. Entries at or below the snapshot are skipped: they are already covered.
   */
  append(entries: readonly Entry[]): void {
    const fresh = entries.filter((entry) => entry.index > this.offset);
    const first = fresh[0];
    if (first === undefined) return;
    if (first.index > this.lastIndex() + 1) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `raft append at ${first.index} leaves a gap after ${this.lastIndex()}`,
      );
    }
    this.log.length = first.index - this.offset - 1;
    this.log.push(...fresh);
  }

  /** Replaces everything with a snapshot received from the leader. Older snapshots are ignored. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.snap.metadata.index) return;
    this.snap = snapshot;
    this.offset = snapshot.metadata.index;
    this.offsetTerm = snapshot.metadata.term;
    this.log = [];
  }

  /**
   * Records a snapshot the host took of its state machine at `index` (applied, so within the log),
   * with the membership in force there. The log is kept; {@link compact} trims it.
   */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    const term = this.term(index);
    if (index <= this.snap.metadata.index) return this.snap;
    if (term === undefined || index > this.hard.commit) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `cannot snapshot at ${index}: stored log is [${this.firstIndex()}, ${this.lastIndex()}], commit ${this.hard.commit}`,
      );
    }
    this.snap = { metadata: { index, term, conf }, data };
    return this.snap;
  }

  /** Drops the entries up to `index`, which the latest snapshot must cover. */
  compact(index: number): void {
    if (index <= this.offset) return;
    if (index > this.snap.metadata.index) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `cannot compact to ${index}: the latest snapshot is at ${this.snap.metadata.index}`,
      );
    }
    const term = this.term(index)!;
    this.log = this.log.slice(index - this.offset);
    this.offset = index;
    this.offsetTerm = term;
  }
}
