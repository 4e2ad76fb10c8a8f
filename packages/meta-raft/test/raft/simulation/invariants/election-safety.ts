// Election safety (Raft paper, figure 3): at most one leader per term, over the whole run.
import type { Invariant, ObservedNode } from './invariant.js';
import { InvariantViolation } from './invariant.js';
import type { RaftStatus } from '../../../../src/index.js';

export class ElectionSafety implements Invariant {
  private readonly leaders = new Map<number, number>();

  afterStep(nodes: readonly { node: ObservedNode; status: RaftStatus }[]): void {
    for (const { status } of nodes) {
      if (status.role !== 'leader') continue;
      const known = this.leaders.get(status.term);
      if (known === undefined) this.leaders.set(status.term, status.id);
      else if (known !== status.id) {
        throw new InvariantViolation(
          'election safety',
          `nodes ${known} and ${status.id} both led term ${status.term}`,
        );
      }
    }
  }
}
