import { join } from 'node:path';
import type { RpcServer } from '@robustmq/rpc';
import { createRpcServer } from '@robustmq/rpc';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RaftMetaPeer, RaftMetaStore } from '../src/index.js';
import { openRaftMetaStore } from '../src/index.js';
import { captureLogger, useTempDirs } from './helpers.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const decode = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);

interface Member {
  store: RaftMetaStore | null;
  server: RpcServer | null;
}

describe('RaftMetaStore, a three-node group', () => {
  const tempDir = useTempDirs();
  const members: Member[] = [];
  let peers: RaftMetaPeer[] = [];
  let dir = '';
  /** The RPC frame limit of the nodes started next; undefined for the default. */
  let frameLimit: number | undefined;
  const loggers = new Map<number, ReturnType<typeof captureLogger>>();
  /** Every logger given to a node in this test, restarts included. */
  const allLoggers: Array<ReturnType<typeof captureLogger>> = [];

  afterEach(async () => {
    frameLimit = undefined;
    loggers.clear();
    allLoggers.length = 0;
    for (const member of members.splice(0)) {
      await member.store?.close();
      await member.server?.close();
    }
  });

  /** Starts node `id` on its port and directory (again, after a stop). */
  async function start(id: number, logger = captureLogger()): Promise<RaftMetaStore> {
    const peer = peers[id - 1]!;
    const limit = frameLimit === undefined ? {} : { maxFrameBytes: frameLimit };
    const server = createRpcServer({ host: '127.0.0.1', port: peer.port, ...limit });
    const address = await server.listen();
    peer.port = address.port;
    loggers.set(id, logger);
    allLoggers.push(logger);
    const store = await openRaftMetaStore({
      id,
      peers,
      dir: join(dir, `node-${id}`),
      rpcServer: server,
      tickMs: 10,
      snapshotEntries: 20,
      logger,
      ...limit,
    });
    members[id - 1] = { store, server };
    return store;
  }

  /** Stops node `id` as a crash would look to the others: its server and store go away. */
  async function stop(id: number): Promise<void> {
    const member = members[id - 1]!;
    await member.server?.close();
    await member.store?.close();
    members[id - 1] = { store: null, server: null };
  }

  async function startGroup(): Promise<RaftMetaStore[]> {
    dir = await tempDir();
    // Reserve three free ports, then give every node the full list.
    const reserved = [1, 2, 3].map(() => createRpcServer({ host: '127.0.0.1', port: 0 }));
    const ports = await Promise.all(reserved.map(async (server) => (await server.listen()).port));
    await Promise.all(reserved.map((server) => server.close()));
    peers = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
    return Promise.all([1, 2, 3].map((id) => start(id)));
  }

  const leaderOf = async (stores: RaftMetaStore[]): Promise<number> =>
    vi.waitFor(
      () => {
        const leaders = stores.filter((store) => store.status().role === 'leader');
        expect(leaders).toHaveLength(1);
        return leaders[0]!.status().id;
      },
      { timeout: 5000, interval: 10 },
    );

  it('elects one leader; writes through a follower are read back from every node', async () => {
    const stores = await startGroup();
    const leader = await leaderOf(stores);
    const follower = stores.find((store) => store.status().id !== leader)!;
    const revision = await follower.put('/k', text('v'));
    for (const store of stores) {
      expect(decode((await store.get('/k'))?.value)).toBe('v');
      expect(await store.revision()).toBe(revision);
    }
  });

  it('survives losing the leader, and the old leader catches up (from a snapshot) on restart', async () => {
    const stores = await startGroup();
    const oldLeader = await leaderOf(stores);
    const acknowledged = new Map<string, string>();
    for (let i = 0; i < 10; i++) {
      await stores[i % 3]!.put(`/a/${i}`, text(`${i}`));
      acknowledged.set(`/a/${i}`, `${i}`);
    }
    await stop(oldLeader);
    const rest = members.map((member) => member.store).filter((store) => store !== null);
    const newLeader = await leaderOf(rest);
    expect(newLeader).not.toBe(oldLeader);
    // Enough writes for the survivors to snapshot and compact past what the old leader holds.
    for (let i = 10; i < 80; i++) {
      await rest[i % 2]!.put(`/a/${i}`, text(`${i}`));
      acknowledged.set(`/a/${i}`, `${i}`);
    }
    const logger = captureLogger();
    const restarted = await start(oldLeader, logger);
    const all = members.map((member) => member.store!);
    await vi.waitFor(
      () => {
        const applied = all.map((store) => store.status().appliedIndex);
        expect(new Set(applied).size).toBe(1);
      },
      { timeout: 5000, interval: 10 },
    );
    for (const store of all) {
      const entries = await store.list('/a/');
      expect(new Map(entries.map((entry) => [entry.key, decode(entry.value)]))).toEqual(acknowledged);
    }
    expect(decode((await restarted.get('/a/79'))?.value)).toBe('79');
    expect(logger.lines.map((line) => line.message)).toContain(
      'meta state restored from the leader snapshot',
    );
  });

  it('catches a follower up from a snapshot larger than the RPC frame limit, sent in pieces', async () => {
    frameLimit = 64 * 1024;
    const stores = await startGroup();
    const leader = await leaderOf(stores);
    const lagging = [1, 2, 3].find((id) => id !== leader)!;
    await stop(lagging);
    const rest = members.map((member) => member.store).filter((store) => store !== null);
    // 60 values of 8 KiB: a state of about 480 KiB, over seven times the frame limit.
    const valueOf = (i: number): Uint8Array => new Uint8Array(8 * 1024).map((_, j) => (i * 31 + j) & 0xff);
    for (let i = 0; i < 60; i++) await rest[i % 2]!.put(`/big/${i}`, valueOf(i));
    const restarted = await start(lagging);
    const leaderStore = members[leader - 1]!.store!;
    await vi.waitFor(() => expect(restarted.status().appliedIndex).toBe(leaderStore.status().appliedIndex), {
      timeout: 10_000,
      interval: 10,
    });
    const entries = await restarted.list('/big/');
    expect(entries).toHaveLength(60);
    for (const entry of entries) {
      expect(entry.value).toEqual(valueOf(Number(entry.key.slice('/big/'.length))));
    }
    expect(loggers.get(lagging)!.lines.map((line) => line.message)).toContain(
      'meta state restored from the leader snapshot',
    );
    expect(loggers.get(leader)!.lines.map((line) => line.message)).toContain('sending a snapshot in pieces');
  }, 30_000);

  it('adds a node newly listed in the configuration, first as a learner, then as a voter', async () => {
    const stores = await startGroup();
    await leaderOf(stores);
    for (let i = 0; i < 30; i++) await stores[i % 3]!.put(`/m/${i}`, text(`${i}`));
    // Node 4 is added to every node's list of meta peers: it starts on its own port, then the
    // others restart one at a time with the new list (a rolling restart).
    const reserved = createRpcServer({ host: '127.0.0.1', port: 0 });
    const port = (await reserved.listen()).port;
    await reserved.close();
    peers.push({ id: 4, host: '127.0.0.1', port });
    const joining = await start(4);
    expect(loggers.get(4)!.lines.map((line) => line.message)).toContain(
      'joining the running meta group; its leader adds this node',
    );
    const live = (): RaftMetaStore[] =>
      members.map((member) => member.store).filter((store) => store !== null);
    for (const id of [1, 2, 3]) {
      await stop(id);
      await start(id);
      await leaderOf(live());
    }
    const leader = await vi.waitFor(
      () => {
        const current = live().find((store) => store.status().role === 'leader');
        expect(current?.status().voters).toEqual([1, 2, 3, 4]);
        return current!;
      },
      { timeout: 20_000, interval: 20 },
    );
    await leader.put('/m/after', text('joined'));
    await vi.waitFor(() => expect(joining.status().appliedIndex).toBe(leader.status().appliedIndex), {
      timeout: 10_000,
      interval: 10,
    });
    expect(await joining.list('/m/')).toHaveLength(31);
    expect(joining.status().voters).toEqual([1, 2, 3, 4]);
    const changes = allLoggers
      .flatMap((logger) => logger.lines)
      .filter((line) => line.message === 'meta group membership change proposed')
      .map((line) => line.fields.change);
    // (A change a leader proposed just before losing leadership may be proposed again.)
    const learner = changes.findIndex((change) => isEqual(change, { type: 'addLearner', nodeId: 4 }));
    const voter = changes.findIndex((change) => isEqual(change, { type: 'addVoter', nodeId: 4 }));
    expect(learner).toBeGreaterThanOrEqual(0);
    expect(voter).toBeGreaterThan(learner);
    expect(changes.every((change) => (change as { nodeId: number }).nodeId === 4)).toBe(true);
    // Four voters: writes go on with one of the first three down, the new member counting.
    await stop(leader.status().id === 1 ? 2 : 1);
    expect(decode((await joining.get('/m/after'))?.value)).toBe('joined');
    await live()[0]!.put('/m/quorum', text('three of four'));
  }, 60_000);

  it('fails reads and writes with UNAVAILABLE when no majority is left', async () => {
    dir = await tempDir();
    const reserved = [1, 2, 3].map(() => createRpcServer({ host: '127.0.0.1', port: 0 }));
    const ports = await Promise.all(reserved.map(async (server) => (await server.listen()).port));
    await Promise.all(reserved.map((server) => server.close()));
    peers = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
    const server = createRpcServer({ host: '127.0.0.1', port: peers[0]!.port });
    await server.listen();
    const store = await openRaftMetaStore({
      id: 1,
      peers,
      dir: join(dir, 'node-1'),
      rpcServer: server,
      tickMs: 10,
      requestTimeoutMs: 300,
    });
    members.push({ store, server });
    await expect(store.put('/k', text('v'))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(store.get('/k')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(store.status()).toMatchObject({ leader: 0 });
  });
});

const isEqual = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
