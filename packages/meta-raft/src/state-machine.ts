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
 * Where a key's current entry lives. The sorted map holds one slot per key for ordered listing and
 * the hash map the same slot for lookups, so rewriting an existing key replaces `entry` in its slot
 * and touches neither structure (keys are found by hash rather than by walking the tree).
 */
interface Slot {
  entry: MetaEntry;
}

/**
 * The meta service's replicated state machine: versioned keys in etcd's revision model. It is pure
 * (no I/O, clocks or randomness), so replicas applying the same commands in the same order hold the
 * same state and produce the same snapshot bytes. Entries it returns are shared and must not be
 * mutated.
 */
export class MetaStateMachine {
  private entries: SortedMap<Slot> = createSortedMap();
  private readonly slots = new Map<string, Slot>();
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

    const ops = command.ops;
    // Commands rarely hold more than one op: remember the first op's slot without an array.
    let firstSlot: Slot | undefined;
    const slots: Array<Slot | undefined> | null = ops.length > 1 ? [] : null;
    let changes = false;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const slot = this.slots.get(op.key);
      if (i === 0) firstSlot = slot;
      if (slots !== null) slots.push(slot);
      const actual = slot?.entry.modRevision ?? 0;
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
      if (op.type === 'put' || slot !== undefined) changes = true;
    }
    if (!changes) {
      const results = ops.map((): MetaOpResult => ({ type: 'delete', deleted: false }));
      return { ok: true, revision: this.current, results, events: [] };
    }

    const revision = this.current + 1;
    const results: MetaOpResult[] = [];
    const events: MetaEvent[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      // Keys are unique within a command, so the slots found above are still current.
      const slot = slots === null ? firstSlot : slots[i];
      if (op.type === 'put') {
        const existing = slot?.entry;
        const entry: MetaEntry = Object.freeze({
          key: op.key,
          value: op.value,
          createRevision: existing?.createRevision ?? revision,
          modRevision: revision,
          version: (existing?.version ?? 0) + 1,
        });
        if (slot !== undefined) slot.entry = entry;
        else {
          const added: Slot = { entry };
          this.slots.set(op.key, added);
          this.entries.set(op.key, added);
        }
        results.push({ type: 'put', revision });
        events.push({ type: 'put', entry, revision });
      } else if (slot !== undefined) {
        this.slots.delete(op.key);
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
    return this.slots.get(key)?.entry ?? null;
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
    for (const [key, slot] of this.entries.entries(from)) {
      if (!key.startsWith(prefix)) break;
      if (key === startAfter) continue;
      found.push(slot.entry);
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
    return encodeMetaSnapshot(this.current, this.entries.size, entriesOf(this.entries.values()));
  }

  /**
   * Replaces the state with a {@link snapshot}. Malformed bytes throw `CORRUPT` and leave the state
   * as it was. Watch history restarts at the snapshot's revision.
   */
  restore(bytes: Uint8Array): void {
    const decoded = decodeMetaSnapshot(bytes);
    const slots = decoded.entries.map((entry): [string, Slot] => [
      entry.key,
      { entry: Object.freeze(entry) },
    ]);
    this.entries = createSortedMap(slots);
    this.slots.clear();
    for (const [key, slot] of slots) this.slots.set(key, slot);
    this.current = decoded.revision;
    this.history.reset(decoded.revision);
  }
}

function* entriesOf(slots: Iterable<Slot>): Iterable<MetaEntry> {
  for (const slot of slots) yield slot.entry;
}
