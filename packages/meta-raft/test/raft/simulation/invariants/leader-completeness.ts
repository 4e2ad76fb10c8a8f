// Leader completeness (figure 3): an entry committed in a term is in the log of every leader of a
// later term. Also "committed entries never change": two nodes never commit different entries at
// one index. The committed log is gathered from every node's commit index as it advances; the term
// an entry was committed in is the term of the node first seen holding it committed (the leader that
// committed it: its commit index moves in a step of its own, and is observed right after).
import type { Entry, RaftStatus } from '../../../../src/index.js';
import type { Invariant, ObservedNode } from './invariant.js';
import { InvariantViolation, sameEntry } from './invariant.js';

export class LeaderCompleteness implements Invariant {
  /** Every entry known committed, by index, with the term it was committed in. */
  readonly committed = new Map<number, { entry: Entry; inTerm: number }>();
  private maxCommitted = 0;
  private readonly seenCommit = new Map<string, number>();
  private readonly checkedLeaderTerm = new Map<number, number>();

  afterStep(nodes: readonly { node: ObservedNode; status: RaftStatus }[]): void {
    const fresh: { entry: Entry; inTerm: number }[] = [];
    for (const { node, status } of nodes) this.collectCommitted(node, status, fresh);
    for (const { node, status } of nodes) {
      if (status.role !== 'leader') continue;
      if (this.checkedLeaderTerm.get(node.id) !== status.term) {
        // A new leader: it must hold everything committed so far.
        this.checkedLeaderTerm.set(node.id, status.term);
        this.checkLeader(node, status, 1, this.maxCommitted);
        continue;
      }
      // A sitting leader: entries of earlier terms found committed just now must be in its log.
      for (const { entry, inTerm } of fresh) {
        if (inTerm < status.term) this.checkLeader(node, status, entry.index, entry.index);
      }
    }
  }

  private collectCommitted(
    node: ObservedNode,
    status: RaftStatus,
    fresh: { entry: Entry; inTerm: number }[],
  ): void {
    const key = `${node.id}/${node.incarnation}`;
    const from = Math.max((this.seenCommit.get(key) ?? 0) + 1, status.firstIndex);
    this.seenCommit.set(key, status.commit);
    if (from > status.commit) return;
    const entries = node.raw!.entries(from, status.commit + 1) ?? [];
    for (const entry of entries) {
      const known = this.committed.get(entry.index);
      if (known === undefined) {
        const committed = { entry, inTerm: status.term };
        this.committed.set(entry.index, committed);
        fresh.push(committed);
        if (entry.index > this.maxCommitted) this.maxCommitted = entry.index;
      } else if (!sameEntry(known.entry, entry)) {
        throw new InvariantViolation(
          'state machine safety',
          `node ${node.id} committed ${entry.term}/${entry.index} where ${known.entry.term}/${known.entry.index} was committed`,
        );
      }
    }
  }

  /**
   * The leader's log holds every entry in `[lo, hi]` committed in an earlier term than its own
   * (those it has compacted are in its snapshot).
   */
  private checkLeader(node: ObservedNode, status: RaftStatus, lo: number, hi: number): void {
    const from = Math.max(lo, status.firstIndex);
    for (let index = from; index <= hi; index++) {
      const known = this.committed.get(index);
      if (known === undefined || known.inTerm >= status.term) continue;
      const term = index <= status.lastIndex ? node.raw!.entries(index, index + 1)?.[0]?.term : undefined;
      if (term !== known.entry.term) {
        throw new InvariantViolation(
          'leader completeness',
          `node ${node.id} leads term ${status.term} with ${term === undefined ? 'no entry' : `term ${term}`} at ${index}, ` +
            `but ${known.entry.term}/${index} was committed in term ${known.inTerm}`,
        );
      }
    }
  }
}
