// A node's view of its log: the durable part in RaftStorage, the unstable tail in memory, and the
// commit and apply points.
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { limitSize } from './entries.js';
import type { RaftStorage } from './storage.js';
import type { Entry, Snapshot } from './types.js';
import { Unstable } from './unstable.js';

export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;

  constructor(
    readonly storage: RaftStorage,
    applied: number,
  ) {
    this.unstable = new Unstable(storage.lastIndex() + 1);
    const dummy = storage.firstIndex() - 1;
    this.committed = Math.max(storage.hardState().commit, dummy);
    if (applied > this.committed) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `applied ${applied} is above the commit index ${this.committed}`,
      );
    }
    this.applied = Math.max(applied, dummy);
  }

  firstIndex(): number {
    return this.unstable.firstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /** The term of entry `index`, or undefined when it is compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return undefined;
    return this.unstable.term(index) ?? this.storage.term(index);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Whether a log ending at (`lastTerm`, `lastIndex`) is at least as up to date as this one. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends entries as the leader; returns the new last index. */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    if (first.index - 1 < this.committed) {
      throw new RobustMQError(
        ErrorCode.Internal,
        `raft: appending at ${first.index} would overwrite committed entries up to ${this.committed}`,
      );
    }
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * Appends what a leader sent after (`index`, `logTerm`) if this log has that entry, replacing any
   * conflicting suffix; moves the commit index up to `commit` (as far as the new entries go).
   * Returns the last index the leader's message covers and the entries actually written, or
   * undefined when the log does not match at `index`.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    commit: number,
    entries: readonly Entry[],
  ): { lastNewIndex: number; appended: readonly Entry[] } | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflict = this.findConflict(entries);
    let appended: readonly Entry[] = [];
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new RobustMQError(
          ErrorCode.Internal,
          `raft: entry ${conflict} conflicts with a committed entry (commit ${this.committed})`,
        );
      }
      appended = entries.slice(conflict - (index + 1));
      this.append(appended);
    }
    this.commitTo(Math.min(commit, lastNewIndex));
    return { lastNewIndex, appended };
  }

  /** The index of the first of `entries` that this log lacks or holds with another term; 0 if none. */
  private findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The last index at or below `index` whose term is at most `term`, with that term: where a leader
   * may probe next after a rejection (the log cannot match above it).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let at = index; at > 0; at--) {
      const ours = this.term(at);
      if (ours === undefined) return { index: at, term: 0 };
      if (ours <= term) return { index: at, term: ours };
    }
    return { index: 0, term: 0 };
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) {
      throw new RobustMQError(
        ErrorCode.Internal,
        `raft: commit ${index} is beyond the last index ${this.lastIndex()}`,
      );
    }
    this.committed = index;
  }

  /** Commits up to `index` if that entry is from `term` (a leader commits only its own term's). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index <= this.applied) return;
    if (index > this.committed) {
      throw new RobustMQError(ErrorCode.Internal, `raft: applied ${index} beyond commit ${this.committed}`);
    }
    this.applied = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  /** Replaces the log with a snapshot from the leader. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** The snapshot waiting to be persisted, or the stored one. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable.entries;
  }

  /** Entries from `lo` to the end, at most `maxBytes` (but at least one); undefined if compacted. */
  entriesFrom(lo: number, maxBytes: number): Entry[] | undefined {
    if (lo > this.lastIndex()) return [];
    return this.slice(lo, this.lastIndex() + 1, maxBytes);
  }

  /** Entries `[lo, hi)`, at most `maxBytes` (but at least one); undefined if `lo` is compacted. */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    if (hi > this.lastIndex() + 1 || lo > hi) {
      throw new RobustMQError(
        ErrorCode.Internal,
        `raft: entries [${lo}, ${hi}) beyond the last index ${this.lastIndex()}`,
      );
    }
    if (lo === hi) return [];
    const offset = this.unstable.offset;
    let found: Entry[] = [];
    if (lo < offset) {
      found = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      if (found.length < Math.min(hi, offset) - lo) return found;
    }
    if (hi > offset) {
      const tail = this.unstable.slice(Math.max(lo, offset), hi);
      return limitSize(found.concat(tail), maxBytes);
    }
    return found;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  /** Committed entries not yet applied, at most `maxBytes` of them (but at least one). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1, maxBytes) ?? [];
  }
}
