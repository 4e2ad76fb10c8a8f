import type { MetaEntry, MetaEvent, MetaListOptions } from '@robustmq/core';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import type { MetaCommand } from './command.js';
import { invalidCommandReason } from './command.js';
import { EventHistory } from './event-history.js';
import { decodeMetaSnapshot, encodeMetaSnapshot } from './snapshot-codec.js';
import { createSortedMap } from './sorted-map.js';
import type { SortedMap } from './sorted-map.js';

/** What one op of an applied command did. */
export type MetaOpResult = { type: 'put'; revision: number } | { type: 'delete'; deleted: boolean };

/** The outcome of {@link MetaStateMachine.apply}: every replica computes the same one. */
export type MetaApplyResult =
  | {
      ok: true;
      /** The store revision after the command (unchanged when it changed nothing). */
      revision: number;
      results: MetaOpResult[];
      events: MetaEvent[];
    }
  | {
      ok: false;
      code: typeof ErrorCode.Conflict;
      /** The first key whose modRevision did not match; nothing was written. */
      key: string;
      expected: number;
      actual: number;
      revision: number;
    }
  | { ok: false; code: typeof ErrorCode.InvalidArgument; message: string; revision: number };

export interface MetaStateMachineOptions {
  /** Events kept for watches resuming `afterRevision` (default 10,000). */
  historyLimit?: number;
}

export const DEFAULT_HISTORY_LIMIT = 10_000;

/**
 * The meta service's replicated state machine: versioned keys in etcd's revision model. It is pure
 * (no I/O, clocks or randomness), so replicas applying the same commands in the same order hold the
 * same state and produce the same snapshot bytes. Entries it returns are shared and must not be
 * mutated.
 */
export class MetaStateMachine {
  private entries: SortedMap<MetaEntry> = createSortedMap();
  private current = 0;
  private readonly history: EventHistory;

  constructor(options: MetaStateMachineOptions = {}) {
    const limit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    if (!(Number.isSafeInteger(limit) && limit >= 0)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `historyLimit must be a non-negative integer, got ${limit}`,
      );
    }
    this.history = new EventHistory(limit);
  }

  /** The store revision: bumped by one for every command that changed something. */
  get revision(): number {
    return this.current;
  }

  /** Number of keys held. */
  get size(): number {
    return this.entries.size;
  }

  /** Events above this revision are held for watches; asking for older ones gives `NOT_FOUND`. */
  get compactedRevision(): number {
    return this.history.compactedRevision;
  }

  /**
   * Applies `command`: its conditions are checked against the state before it, then all its ops
   * take effect at one new revision, or none do.
   */
  apply(command: MetaCommand): MetaApplyResult {
    const reason = invalidCommandReason(command);
    if (reason !== null)
      return { ok: false, code: ErrorCode.InvalidArgument, message: reason, revision: this.current };

    let changes = false;
    for (const op of command.ops) {
      const existing = this.entries.get(op.key);
      const actual = existing?.modRevision ?? 0;
      if (op.ifRevision !== undefined && op.ifRevision !== actual) {
        return {
          ok: false,
          code: ErrorCode.Conflict,
          key: op.key,
          expected: op.ifRevision,
          actual,
          revision: this.current,
        };
      }
      if (op.type === 'put' || existing !== undefined) changes = true;
    }
    if (!changes) {
      const results = command.ops.map((): MetaOpResult => ({ type: 'delete', deleted: false }));
      return { ok: true, revision: this.current, results, events: [] };
    }

    const revision = this.current + 1;
    const results: MetaOpResult[] = [];
    const events: MetaEvent[] = [];
    for (const op of command.ops) {
      const existing = this.entries.get(op.key);
      if (op.type === 'put') {
        const entry: MetaEntry = Object.freeze({
          key: op.key,
          value: op.value,
          createRevision: existing?.createRevision ?? revision,
          modRevision: revision,
          version: (existing?.version ?? 0) + 1,
        });
        this.entries.set(op.key, entry);
        results.push({ type: 'put', revision });
        events.push({ type: 'put', entry, revision });
      } else if (existing !== undefined) {
        this.entries.delete(op.key);
        results.push({ type: 'delete', deleted: true });
        events.push({ type: 'delete', key: op.key, revision });
      } else {
        results.push({ type: 'delete', deleted: false });
      }
    }
    this.current = revision;
    this.history.append(events);
    return { ok: true, revision, results, events };
  }

  get(key: string): MetaEntry | null {
    return this.entries.get(key) ?? null;
  }

  /** Entries whose key starts with `prefix`, in key order, after `startAfter`, at most `limit`. */
  list(prefix: string, options: MetaListOptions = {}): MetaEntry[] {
    const { startAfter, limit } = options;
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `limit must be a non-negative integer, got ${limit}`,
      );
    }
    const max = limit ?? Infinity;
    const found: MetaEntry[] = [];
    if (max === 0) return found;
    const from = startAfter !== undefined && startAfter > prefix ? startAfter : prefix;
    for (const [key, entry] of this.entries.entries(from)) {
      if (!key.startsWith(prefix)) break;
      if (key === startAfter) continue;
      found.push(entry);
      if (found.length >= max) break;
    }
    return found;
  }

  /**
   * Events above `revision` under `prefix`, oldest first. Throws `NOT_FOUND` when that history has
   * been compacted away.
   */
  eventsAfter(revision: number, prefix = ''): MetaEvent[] {
    const events = this.history.after(revision, prefix);
    if (events === null) {
      throw new RobustMQError(
        ErrorCode.NotFound,
        `meta history after revision ${revision} is compacted (events are kept after ${this.history.compactedRevision})`,
      );
    }
    return events;
  }

  /** The whole key space and revision as deterministic bytes (event history is not included). */
  snapshot(): Uint8Array {
    return encodeMetaSnapshot(this.current, this.entries.size, this.entries.values());
  }

  /**
   * Replaces the state with a {@link snapshot}. Malformed bytes throw `CORRUPT` and leave the state
   * as it was. Watch history restarts at the snapshot's revision.
   */
  restore(bytes: Uint8Array): void {
    const decoded = decodeMetaSnapshot(bytes);
    this.entries = createSortedMap(decoded.entries.map((entry) => [entry.key, Object.freeze(entry)]));
    this.current = decoded.revision;
    this.history.reset(decoded.revision);
  }
}
