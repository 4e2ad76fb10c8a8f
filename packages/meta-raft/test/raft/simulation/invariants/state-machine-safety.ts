// State machine safety (figure 3): every node applies the same command at each index, and its
// state machine reaches the same revision there; a restored snapshot matches too.
import type { Entry } from '../../../../src/index.js';
import type { Invariant, ObservedNode } from './invariant.js';
import { InvariantViolation, sameEntry } from './invariant.js';

export class StateMachineSafety implements Invariant {
  private readonly applied = new Map<number, { entry: Entry; revision: number }>();
  private readonly revisionAt = new Map<number, number>();

  onApply(node: ObservedNode, entry: Entry, revision: number): void {
    const known = this.applied.get(entry.index);
    if (known === undefined) {
      this.applied.set(entry.index, { entry, revision });
      this.revisionAt.set(entry.index, revision);
      return;
    }
    if (!sameEntry(known.entry, entry)) {
      throw new InvariantViolation(
        'state machine safety',
        `node ${node.id} applied ${entry.term}/${entry.index}, another node ${known.entry.term}/${known.entry.index}`,
      );
    }
    if (known.revision !== revision) {
      throw new InvariantViolation(
        'state machine safety',
        `node ${node.id} is at revision ${revision} after index ${entry.index}, another node at ${known.revision}`,
      );
    }
  }

  onRestore(node: ObservedNode, index: number, revision: number): void {
    const known = this.revisionAt.get(index);
    if (known !== undefined && known !== revision) {
      throw new InvariantViolation(
        'state machine safety',
        `node ${node.id} restored a snapshot at ${index} with revision ${revision}; applying gave ${known}`,
      );
    }
    this.revisionAt.set(index, revision);
  }
}
