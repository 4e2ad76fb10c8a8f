// The simulation's invariant checkers catch what they are for, fed hand-made observations.
import { describe, expect, it } from 'vitest';
import type { Entry, RaftStatus, Ready } from '../../src/index.js';
import { confState, MemoryRaftStorage } from '../../src/index.js';
import { ElectionSafety } from './simulation/invariants/election-safety.js';
import type { ObservedNode } from './simulation/invariants/invariant.js';
import { LogMatching } from './simulation/invariants/log-matching.js';
import { Monotonic } from './simulation/invariants/monotonic.js';
import { StateMachineSafety } from './simulation/invariants/state-machine-safety.js';

const entry = (term: number, index: number, data: string): Entry => ({
  term,
  index,
  type: 'normal',
  data: new TextEncoder().encode(data),
});

const node = (id: number, incarnation = 1): ObservedNode => ({
  id,
  incarnation,
  raw: null,
  storage: MemoryRaftStorage.bootstrap(confState([1, 2, 3])),
});

const status = (id: number, fields: Partial<RaftStatus>): RaftStatus => ({
  id,
  role: 'follower',
  leader: 0,
  term: 1,
  vote: 0,
  commit: 1,
  applied: 1,
  firstIndex: 2,
  lastIndex: 1,
  lastTerm: 1,
  conf: confState([1, 2, 3]),
  leadTransferee: 0,
  progress: new Map(),
  ...fields,
});

const ready = (entries: Entry[], hardState?: Ready['hardState']): Ready => ({
  entries,
  committedEntries: [],
  messages: [],
  readStates: [],
  mustSync: true,
  ...(hardState !== undefined ? { hardState } : {}),
});

describe('simulation invariants', () => {
  it('election safety: two leaders of one term', () => {
    const check = new ElectionSafety();
    check.afterStep([{ node: node(1), status: status(1, { role: 'leader', term: 2 }) }]);
    check.afterStep([{ node: node(2), status: status(2, { role: 'leader', term: 3 }) }]);
    expect(() =>
      check.afterStep([{ node: node(3), status: status(3, { role: 'leader', term: 3 }) }]),
    ).toThrow(/nodes 2 and 3 both led term 3/);
  });

  it('log matching: one index and term carrying two commands', () => {
    const check = new LogMatching();
    const a = node(1);
    const b = node(2);
    a.storage.append([entry(2, 2, 'x')]);
    check.afterPersist(a, ready([entry(2, 2, 'x')]));
    b.storage.append([entry(2, 2, 'y')]);
    expect(() => check.afterPersist(b, ready([entry(2, 2, 'y')]))).toThrow(/log matching/);
  });

  it('state machine safety: different commands or revisions at one index', () => {
    const check = new StateMachineSafety();
    check.onApply(node(1), entry(2, 2, 'x'), 1);
    expect(() => check.onApply(node(2), entry(2, 2, 'y'), 1)).toThrow(/applied/);
    expect(() => check.onApply(node(3), entry(2, 2, 'x'), 2)).toThrow(/revision 2/);
    expect(() => check.onRestore(node(3), 2, 5)).toThrow(/restored a snapshot/);
  });

  it('monotonic: term going back while running, a second vote in a term', () => {
    const check = new Monotonic();
    check.afterStep([{ node: node(1), status: status(1, { term: 3 }) }]);
    expect(() => check.afterStep([{ node: node(1), status: status(1, { term: 2 }) }])).toThrow(/term went/);
    // A restart may come back with less in memory, but never re-vote in a term.
    check.afterStep([{ node: node(1, 2), status: status(1, { term: 2 }) }]);
    const before = { term: 3, vote: 2, commit: 1 };
    expect(() => check.beforePersist(node(1), ready([], { term: 3, vote: 3, commit: 1 }), before)).toThrow(
      /changed its vote/,
    );
    expect(() => check.beforePersist(node(1), ready([], { term: 2, vote: 0, commit: 1 }), before)).toThrow(
      /stored term 2 over 3/,
    );
    check.beforePersist(node(1), ready([], { term: 4, vote: 3, commit: 1 }), before);
  });
});
