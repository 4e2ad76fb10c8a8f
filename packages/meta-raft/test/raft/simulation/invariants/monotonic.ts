// Monotonic state: a node's term, commit and applied index never go back while it runs; its
// durable term never goes back across restarts; and once it has durably voted in a term, that vote
// never changes (else it could vote twice in one term).
import type { HardState, RaftStatus, Ready } from '../../../../src/index.js';
import type { Invariant, ObservedNode } from './invariant.js';
import { InvariantViolation } from './invariant.js';

export class Monotonic implements Invariant {
  private readonly last = new Map<string, { term: number; commit: number; applied: number }>();

  afterStep(nodes: readonly { node: ObservedNode; status: RaftStatus }[]): void {
    for (const { node, status } of nodes) {
      const key = `${node.id}/${node.incarnation}`;
      const before = this.last.get(key);
      if (before !== undefined) {
        for (const field of ['term', 'commit', 'applied'] as const) {
          if (status[field] < before[field]) {
            throw new InvariantViolation(
              'monotonic',
              `node ${node.id}'s ${field} went from ${before[field]} to ${status[field]}`,
            );
          }
        }
      }
      this.last.set(key, { term: status.term, commit: status.commit, applied: status.applied });
    }
  }

  beforePersist(node: ObservedNode, ready: Ready, before: HardState): void {
    const next = ready.hardState;
    if (next === undefined) return;
    if (next.term < before.term) {
      throw new InvariantViolation(
        'monotonic',
        `node ${node.id} stored term ${next.term} over ${before.term}`,
      );
    }
    if (next.term === before.term && before.vote !== 0 && next.vote !== before.vote) {
      throw new InvariantViolation(
        'monotonic',
        `node ${node.id} changed its vote in term ${next.term} from ${before.vote} to ${next.vote}`,
      );
    }
  }
}
