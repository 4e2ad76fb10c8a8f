import { ConfigError, ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { RaftOptions, Ready } from '../../src/index.js';
import { confState, MemoryRaftStorage, RawNode } from '../../src/index.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** A one-node host loop: persist, apply, advance; returns the Ready handled. */
function handle(node: RawNode, storage: MemoryRaftStorage): Ready {
  const ready = node.ready();
  if (ready.snapshot !== undefined) storage.applySnapshot(ready.snapshot);
  storage.append(ready.entries);
  if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
  node.advance();
  return ready;
}

function singleNode(options: Partial<RaftOptions> = {}): { node: RawNode; storage: MemoryRaftStorage } {
  const storage =
    options.storage instanceof MemoryRaftStorage
      ? options.storage
      : MemoryRaftStorage.bootstrap(confState([1]));
  const node = new RawNode({ id: 1, random: () => 0, ...options, storage });
  return { node, storage };
}

describe('RawNode', () => {
  it('refuses impossible settings with a ConfigError naming the setting', () => {
    const storage = new MemoryRaftStorage();
    const make = (options: Partial<RaftOptions>) => () =>
      new RawNode({ id: 1, storage, random: () => 0, ...options });
    expect(make({ heartbeatTick: 10, electionTick: 10 })).toThrow(ConfigError);
    expect(make({ readOnly: 'lease', checkQuorum: false })).toThrow(/raft.readOnly/);
    expect(make({ id: 0 })).toThrow(/raft.id/);
    expect(make({ maxInflightMsgs: 0 })).toThrow(/raft.maxInflightMsgs/);
  });

  it('as a group of one, leads at once and commits each proposal in the Ready that persists it', () => {
    const { node, storage } = singleNode();
    node.campaign();
    const first = handle(node, storage);
    expect(first.softState).toEqual({ leader: 1, role: 'leader' });
    expect(first.hardState).toEqual({ term: 2, vote: 1, commit: 2 });
    const at = node.propose(text('a'));
    expect(at).toEqual({ index: 3, term: 2 });
    const ready = handle(node, storage);
    expect(ready.entries.map((e) => e.index)).toEqual([3]);
    expect(ready.committedEntries.map((e) => e.index)).toEqual([3]);
    expect(ready.mustSync).toBe(true);
    expect(node.hasReady()).toBe(false);
    expect(node.status()).toMatchObject({ commit: 3, applied: 3, lastIndex: 3 });
  });

  it('batches several commands into one proposal', () => {
    const { node, storage } = singleNode();
    node.campaign();
    handle(node, storage);
    expect(node.propose([text('a'), text('b'), text('c')])).toEqual({ index: 3, term: 2 });
    expect(handle(node, storage).committedEntries).toHaveLength(3);
    expect(() => node.propose([])).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });

  it('holds the Ready contract: no second ready() before advance(), no advance() without a ready()', () => {
    const { node } = singleNode();
    node.campaign();
    node.ready();
    expect(node.hasReady()).toBe(false);
    expect(() => node.ready()).toThrow(/before advance/);
    node.advance();
    expect(() => node.advance()).toThrow(/without a Ready/);
  });

  it('refuses proposals and reads without a leader with UNAVAILABLE', () => {
    const storage = MemoryRaftStorage.bootstrap(confState([1, 2, 3]));
    const node = new RawNode({ id: 1, storage, random: () => 0 });
    const unavailable = expect.objectContaining({ code: ErrorCode.Unavailable });
    expect(() => node.propose(text('a'))).toThrow(unavailable);
    expect(() => node.readIndex('r1')).toThrow(unavailable);
    expect(() => node.proposeConfChange({ type: 'addVoter', nodeId: 4 })).toThrow(unavailable);
    expect(() => node.readIndex('')).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
    expect(() =>
      node.step({ type: 'heartbeat', from: 2, to: 3, term: 1, commit: 0, context: '', round: 1 }),
    ).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });

  it('restarts from storage with its term, vote, log and membership (including changes in the log)', () => {
    const { node, storage } = singleNode();
    node.campaign();
    handle(node, storage);
    node.proposeConfChange({ type: 'addLearner', nodeId: 2 });
    node.propose(text('a'));
    handle(node, storage);
    expect(node.confStateAt(2)).toEqual(confState([1]));
    expect(node.confStateAt(3)).toEqual(confState([1], [2]));

    const restarted = new RawNode({ id: 1, storage, random: () => 0, applied: 4 });
    expect(restarted.status()).toMatchObject({
      role: 'follower',
      term: 2,
      vote: 1,
      commit: 4,
      applied: 4,
      lastIndex: 4,
      conf: confState([1], [2]),
    });
    restarted.campaign();
    expect(handle(restarted, storage).softState?.role).toBe('leader');
  });

  it('delivers committed entries not yet applied after a restart', () => {
    const { node, storage } = singleNode();
    node.campaign();
    handle(node, storage);
    node.propose(text('a'));
    handle(node, storage);
    const restarted = new RawNode({ id: 1, storage, random: () => 0 });
    expect(restarted.ready().committedEntries.map((e) => e.index)).toEqual([2, 3]);
  });

  it('randomizes the election timeout between one and two election ticks', () => {
    const timeouts = [0, 0.5, 0.99].map((value) => {
      const storage = MemoryRaftStorage.bootstrap(confState([1, 2, 3]));
      const node = new RawNode({ id: 1, storage, random: () => value, electionTick: 10, preVote: false });
      let ticks = 0;
      while (node.status().role === 'follower') {
        node.tick();
        ticks++;
      }
      return ticks;
    });
    expect(timeouts).toEqual([10, 15, 19]);
  });
});
