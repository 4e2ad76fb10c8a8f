// One simulated server: a RawNode over a storage that survives crashes (the disk), the meta state
// machine it applies to, and the client requests it is serving. It follows the Ready contract:
// write, then send, then apply, then advance; the write takes a little virtual time.
import type { Entry, Message, RaftOptions, Ready } from '../../../src/index.js';
import type { MemoryRaftStorage } from '../../../src/index.js';
import { decodeMetaCommand, encodeMetaCommand, MetaStateMachine, RawNode } from '../../../src/index.js';
import { seededRandom } from '../../random.js';
import type { Invariant, ObservedNode } from './invariants/invariant.js';

/** How a client request ended, as the node saw it. */
export type Outcome =
  | { kind: 'ok' }
  | { kind: 'read'; value: string | null }
  /** The write certainly did not happen (another entry took its place). */
  | { kind: 'failed' }
  /** The node lost track (crash, snapshot): the write may or may not happen. */
  | { kind: 'unknown' };

/** What a node needs from the simulation around it. */
export interface SimHost {
  readonly now: number;
  readonly random: () => number;
  readonly invariants: readonly Invariant[];
  scheduleTick(node: SimNode, delay: number): void;
  schedulePersist(node: SimNode, delay: number): void;
  send(message: Message): void;
  complete(opId: number, outcome: Outcome): void;
  onApplied(node: SimNode, entry: Entry): void;
  /** Notes an event for the failure report (rendered only then). */
  log(line: string | (() => string)): void;
}

export interface SimNodeOptions {
  raft: Omit<RaftOptions, 'id' | 'storage' | 'random' | 'applied'>;
  /** Virtual milliseconds between this node's ticks. */
  tickMs: number;
  /** Take a snapshot once this many entries are applied past the last one. */
  snapshotEvery: number;
  /** Entries kept in the log behind a snapshot. */
  keepEntries: number;
  /** On a crash, write a random part of an unfinished write (a torn write). */
  tornWrites: boolean;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class SimNode implements ObservedNode {
  incarnation = 0;
  raw: RawNode | null = null;
  sm = new MetaStateMachine({ historyLimit: 0 });
  /** Left the group for good: never restarted. */
  stopped = false;
  appliedIndex = 0;
  /** Virtual time of the last crash. */
  crashedAt = -Infinity;
  private pending: Ready | null = null;
  private readonly writes = new Map<number, { term: number; opId: number }>();
  private readonly reads = new Map<string, { opId: number; key: string }>();
  private awaiting: { index: number; opId: number; key: string }[] = [];

  constructor(
    readonly id: number,
    readonly storage: MemoryRaftStorage,
    private readonly host: SimHost,
    private readonly options: SimNodeOptions,
  ) {}

  get up(): boolean {
    return this.raw !== null;
  }

  /** Starts (or restarts) from what the storage holds. */
  start(): void {
    this.incarnation++;
    const snapshot = this.storage.snapshot();
    this.sm = new MetaStateMachine({ historyLimit: 0 });
    if (snapshot.metadata.index > 0) this.sm.restore(snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
    this.raw = new RawNode({
      ...this.options.raft,
      id: this.id,
      storage: this.storage,
      applied: snapshot.metadata.index,
      random: seededRandom(Math.floor(this.host.random() * 2 ** 32)),
    });
    this.host.scheduleTick(this, this.options.tickMs);
  }

  /** Stops at once: memory is lost, and any write in progress is lost or (torn) partly done. */
  crash(): void {
    const pending = this.pending;
    if (pending !== null && this.options.tornWrites && this.host.random() < 0.5) {
      // The write got partway: a prefix of (snapshot, entries..., hard state) reached the disk, but
      // no message went out.
      const hasSnapshot = pending.snapshot !== undefined ? 1 : 0;
      let budget = Math.floor(this.host.random() * (hasSnapshot + pending.entries.length + 2));
      if (pending.snapshot !== undefined && budget > 0) {
        this.storage.applySnapshot(pending.snapshot);
        budget--;
      }
      const written = Math.min(budget, pending.entries.length);
      this.storage.append(pending.entries.slice(0, written));
      budget -= written;
      if (budget > 0 && pending.hardState !== undefined) this.storage.setHardState(pending.hardState);
      this.host.log(`node ${this.id} torn write: ${written} of ${pending.entries.length} entries`);
    }
    this.raw = null;
    this.pending = null;
    this.crashedAt = this.host.now;
    for (const write of this.writes.values()) this.host.complete(write.opId, { kind: 'unknown' });
    this.writes.clear();
    this.reads.clear();
    this.awaiting = [];
  }

  tick(incarnation: number): void {
    if (incarnation !== this.incarnation || this.raw === null) return;
    this.raw.tick();
    this.afterInput();
    this.host.scheduleTick(this, this.options.tickMs);
  }

  deliver(message: Message): boolean {
    if (this.raw === null) return false;
    this.raw.step(message);
    this.afterInput();
    return true;
  }

  reportSnapshot(to: number, ok: boolean): void {
    if (this.raw === null) return;
    this.raw.reportSnapshot(to, ok);
    this.afterInput();
  }

  reportUnreachable(to: number): void {
    if (this.raw === null) return;
    this.raw.reportUnreachable(to);
    this.afterInput();
  }

  /** A client write; false when this node cannot take it (not the leader). */
  submitWrite(opId: number, key: string, value: string): boolean {
    if (this.raw === null) return false;
    const data = encodeWrite(key, value);
    let at: { index: number; term: number };
    try {
      at = this.raw.propose(data);
    } catch {
      return false;
    }
    this.writes.set(at.index, { term: at.term, opId });
    this.afterInput();
    return true;
  }

  /** A client read (linearizable, by ReadIndex); false when no leader is known. */
  submitRead(opId: number, key: string): boolean {
    if (this.raw === null) return false;
    const context = `${this.id}/${this.incarnation}/${opId}`;
    try {
      this.raw.readIndex(context);
    } catch {
      return false;
    }
    this.reads.set(context, { opId, key });
    this.afterInput();
    return true;
  }

  /** Triggers a membership change or transfer through this node's RawNode. */
  act(action: (raw: RawNode) => void): void {
    if (this.raw === null) return;
    action(this.raw);
    this.afterInput();
  }

  private afterInput(): void {
    if (this.raw === null || this.pending !== null || !this.raw.hasReady()) return;
    this.pending = this.raw.ready();
    const slow = this.pending.mustSync ? 1 + Math.floor(this.host.random() * 3) : 0;
    this.host.schedulePersist(this, slow);
  }

  /** The write of the pending Ready is done: send, apply, advance, and start on the next one. */
  persisted(incarnation: number): void {
    const ready = this.pending;
    if (incarnation !== this.incarnation || this.raw === null || ready === null) return;
    for (const invariant of this.host.invariants)
      invariant.beforePersist?.(this, ready, this.storage.hardState());
    if (ready.snapshot !== undefined) this.storage.applySnapshot(ready.snapshot);
    this.storage.append(ready.entries);
    if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
    for (const invariant of this.host.invariants) invariant.afterPersist?.(this, ready);
    this.host.log(() => describePersist(this.id, ready));

    for (const message of ready.messages) this.host.send(message);

    if (ready.snapshot !== undefined) this.restore(ready.snapshot.metadata.index, ready.snapshot.data);
    for (const entry of ready.committedEntries) this.apply(entry);
    for (const state of ready.readStates) {
      const read = this.reads.get(state.context);
      if (read === undefined) continue;
      this.reads.delete(state.context);
      this.awaiting.push({ index: state.index, ...read });
    }
    this.serveReads();
    this.pending = null;
    this.raw.advance();
    this.maybeSnapshot();
    this.afterInput();
  }

  private restore(index: number, data: Uint8Array): void {
    this.sm.restore(data);
    this.appliedIndex = index;
    for (const invariant of this.host.invariants) invariant.onRestore?.(this, index, this.sm.revision);
    for (const [at, write] of this.writes) {
      if (at > index) continue;
      this.writes.delete(at);
      this.host.complete(write.opId, { kind: 'unknown' });
    }
  }

  private apply(entry: Entry): void {
    if (entry.type === 'normal' && entry.data.byteLength > 0) this.sm.apply(decodeMetaCommand(entry.data));
    this.appliedIndex = entry.index;
    for (const invariant of this.host.invariants) invariant.onApply?.(this, entry, this.sm.revision);
    const write = this.writes.get(entry.index);
    if (write !== undefined) {
      this.writes.delete(entry.index);
      this.host.complete(write.opId, write.term === entry.term ? { kind: 'ok' } : { kind: 'failed' });
    }
    this.host.onApplied(this, entry);
  }

  private serveReads(): void {
    const ready = this.awaiting.filter((read) => read.index <= this.appliedIndex);
    if (ready.length === 0) return;
    this.awaiting = this.awaiting.filter((read) => read.index > this.appliedIndex);
    for (const read of ready) {
      const entry = this.sm.get(read.key);
      this.host.complete(read.opId, {
        kind: 'read',
        value: entry === null ? null : decoder.decode(entry.value),
      });
    }
  }

  private maybeSnapshot(): void {
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (this.raw === null || this.appliedIndex - snapshotIndex < this.options.snapshotEvery) return;
    const index = this.appliedIndex;
    this.storage.createSnapshot(index, this.raw.confStateAt(index), this.sm.snapshot());
    const compactTo = index - this.options.keepEntries;
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
  }
}

/** A client write as a meta command: put `value` under `key`. */
export function encodeWrite(key: string, value: string): Uint8Array {
  return encodeMetaCommand({ ops: [{ type: 'put', key, value: encoder.encode(value) }] });
}

function describePersist(id: number, ready: Ready): string {
  const parts = [`node ${id} persisted`];
  if (ready.softState !== undefined) parts.push(`${ready.softState.role} leader=${ready.softState.leader}`);
  if (ready.hardState !== undefined) {
    const { term, vote, commit } = ready.hardState;
    parts.push(`term=${term} vote=${vote} commit=${commit}`);
  }
  if (ready.snapshot !== undefined)
    parts.push(`snapshot=${ready.snapshot.metadata.term}/${ready.snapshot.metadata.index}`);
  const first = ready.entries[0];
  const last = ready.entries[ready.entries.length - 1];
  if (first !== undefined && last !== undefined) {
    parts.push(`entries=${first.term}/${first.index}..${last.term}/${last.index}`);
  }
  return parts.join(' ');
}
