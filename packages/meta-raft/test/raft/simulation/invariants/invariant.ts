// What the invariant checkers see of a node, and how they report a violation.
import type {
  Entry,
  HardState,
  MemoryRaftStorage,
  RaftStatus,
  RawNode,
  Ready,
} from '../../../../src/index.js';

/** A node as the checkers observe it after an event. */
export interface ObservedNode {
  readonly id: number;
  /** Bumped at every restart: in-memory state starts over. */
  readonly incarnation: number;
  /** Null while the node is down. */
  readonly raw: RawNode | null;
  readonly storage: MemoryRaftStorage;
}

export class InvariantViolation extends Error {
  constructor(invariant: string, message: string) {
    super(`${invariant}: ${message}`);
    this.name = 'InvariantViolation';
  }
}

/** Hooks an invariant may implement; the simulation calls them as things happen. */
export interface Invariant {
  /** After every simulation step, with each live node's status. */
  afterStep?(nodes: readonly { node: ObservedNode; status: RaftStatus }[]): void;
  /** A node is about to write a Ready to durable storage (`before` is the stored hard state). */
  beforePersist?(node: ObservedNode, ready: Ready, before: HardState): void;
  /** A node wrote a Ready to durable storage. */
  afterPersist?(node: ObservedNode, ready: Ready): void;
  /** A node applied a committed entry; `revision` is its state machine's revision after it. */
  onApply?(node: ObservedNode, entry: Entry, revision: number): void;
  /** A node restored a snapshot at `index` whose state machine revision is `revision`. */
  onRestore?(node: ObservedNode, index: number, revision: number): void;
}

/** Whether two entries carry the same command. */
export function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (a.term !== b.term || a.index !== b.index || a.type !== b.type) return false;
  if (a.data.byteLength !== b.data.byteLength) return false;
  for (let i = 0; i < a.data.byteLength; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}
