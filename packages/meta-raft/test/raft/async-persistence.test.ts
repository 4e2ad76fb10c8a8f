import { describe, expect, it } from 'vitest';
import type { Message, Ready } from '../../src/index.js';
import { confState, MemoryRaftStorage, RawNode } from '../../src/index.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/**
 * A host that writes each Ready to memory at once but reports the writes durable only when told
 * (`durable`), as a leader syncing its log in the background does.
 */
class Host {
  readonly storage: MemoryRaftStorage;
  readonly node: RawNode;
  /** The last entry written and not yet reported durable. */
  pending: { index: number; term: number } | null = null;

  constructor(
    id: number,
    voters: number[],
    private readonly reportAtOnce: boolean,
  ) {
    this.storage = MemoryRaftStorage.bootstrap(confState(voters));
    this.node = new RawNode({
      id,
      storage: this.storage,
      random: () => (id === 1 ? 0 : 0.99),
      asyncLeaderPersistence: true,
      preVote: false,
    });
  }

  /** Handles every Ready; returns the messages to send and the entries committed. */
  drain(): { messages: Message[]; committed: number[] } {
    const messages: Message[] = [];
    const committed: number[] = [];
    while (this.node.hasReady()) {
      const ready: Ready = this.node.ready();
      if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
      this.storage.append(ready.entries);
      const last = ready.entries[ready.entries.length - 1];
      if (last !== undefined) {
        this.pending = { index: last.index, term: last.term };
        if (this.reportAtOnce) this.durable();
      }
      messages.push(...ready.messages);
      committed.push(...ready.committedEntries.map((entry) => entry.index));
      this.node.advance();
    }
    return { messages, committed };
  }

  durable(): void {
    if (this.pending === null) return;
    this.node.persisted(this.pending.index, this.pending.term);
    this.pending = null;
  }
}

/** Delivers messages among `hosts` until none are left; returns the entries each committed. */
function settle(hosts: Map<number, Host>, dropTo: ReadonlySet<number> = new Set()): Map<number, number[]> {
  const committed = new Map<number, number[]>([...hosts.keys()].map((id) => [id, []]));
  for (let round = 0; round < 100; round++) {
    const inFlight: Message[] = [];
    for (const [id, host] of hosts) {
      const { messages, committed: done } = host.drain();
      committed.get(id)!.push(...done);
      inFlight.push(...messages);
    }
    const delivered = inFlight.filter((m) => !dropTo.has(m.to));
    if (delivered.length === 0) return committed;
    for (const message of delivered) hosts.get(message.to)!.node.step(message);
  }
  throw new Error('messages did not settle');
}

describe('asyncLeaderPersistence', () => {
  it('commits a group of one only once its entries are reported durable', () => {
    const host = new Host(1, [1], false);
    host.node.campaign();
    host.drain();
    // The election's own empty entry waits for its write too.
    expect(host.node.status().commit).toBe(1);
    host.durable();
    expect(host.drain().committed).toEqual([2]);
    host.node.propose(text('a'));
    expect(host.drain().committed).toEqual([]);
    expect(host.node.status().commit).toBe(2);
    host.durable();
    expect(host.drain().committed).toEqual([3]);
  });

  it('commits on the followers alone while the leader has not reported its write', () => {
    const hosts = new Map([1, 2, 3].map((id) => [id, new Host(id, [1, 2, 3], id !== 1)] as const));
    const leader = hosts.get(1)!;
    leader.node.campaign();
    settle(hosts);
    expect(leader.node.status()).toMatchObject({ role: 'leader', commit: 2 });
    leader.node.propose(text('a'));
    const committed = settle(hosts);
    expect(leader.pending).not.toBeNull(); // the leader never reported index 3 durable
    expect(committed.get(1)).toEqual([3]);
  });

  it('needs the leader write when only one follower answers', () => {
    const hosts = new Map([1, 2, 3].map((id) => [id, new Host(id, [1, 2, 3], id !== 1)] as const));
    const leader = hosts.get(1)!;
    leader.node.campaign();
    settle(hosts);
    leader.durable();
    settle(hosts);
    leader.node.propose(text('a'));
    const cut = new Set([3]);
    expect(settle(hosts, cut).get(1)).toEqual([]);
    expect(leader.node.status().commit).toBe(2);
    leader.durable();
    expect(settle(hosts, cut).get(1)).toEqual([3]);
  });

  it('ignores a report about entries the log no longer holds', () => {
    const host = new Host(1, [1], false);
    host.node.campaign();
    host.drain();
    host.node.persisted(2, 7); // index 2 holds an entry of term 2, not 7
    expect(host.drain().committed).toEqual([]);
    host.node.persisted(9, 2); // beyond the log
    expect(host.drain().committed).toEqual([]);
    host.durable();
    expect(host.drain().committed).toEqual([2]);
  });
});
