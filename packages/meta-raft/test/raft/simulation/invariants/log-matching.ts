// Log matching (figure 3): if two logs hold an entry with the same index and term, the logs are
// identical up to it. Checked inductively over every entry any node makes durable: one (index,
// term) always carries the same command and follows an entry of the same term.
import type { Entry, Ready } from '../../../../src/index.js';
import type { Invariant, ObservedNode } from './invariant.js';
import { InvariantViolation, sameEntry } from './invariant.js';

export class LogMatching implements Invariant {
  private readonly seen = new Map<string, { entry: Entry; prevTerm: number }>();

  afterPersist(node: ObservedNode, ready: Ready): void {
    for (const entry of ready.entries) {
      const prevTerm = node.storage.term(entry.index - 1);
      if (prevTerm === undefined) {
        throw new InvariantViolation(
          'log matching',
          `node ${node.id} stored ${entry.term}/${entry.index} after a gap`,
        );
      }
      const key = `${entry.index}/${entry.term}`;
      const known = this.seen.get(key);
      if (known === undefined) {
        this.seen.set(key, { entry, prevTerm });
        continue;
      }
      if (!sameEntry(known.entry, entry) || known.prevTerm !== prevTerm) {
        throw new InvariantViolation(
          'log matching',
          `node ${node.id} stored entry ${key} (after term ${prevTerm}) unlike another node's (after term ${known.prevTerm})`,
        );
      }
    }
  }
}
