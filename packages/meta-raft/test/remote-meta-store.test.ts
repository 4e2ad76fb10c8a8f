import { join } from 'node:path';
import type { MetaEvent, MetaStore } from '@robustmq/core';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import type { RpcServer } from '@robustmq/rpc';
import { createRpcServer } from '@robustmq/rpc';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RaftMetaPeer, RaftMetaStore } from '../src/index.js';
import { openRaftMetaStore } from '../src/index.js';
import type { RemoteMetaStore } from '../src/remote/index.js';
import { connectRemoteMetaStore } from '../src/remote/index.js';
import { describeMetaStore } from '../src/testing/index.js';
import { text, useTempDirs } from './helpers.js';

interface Group {
  peers: RaftMetaPeer[];
  stores: Array<RaftMetaStore | null>;
  servers: Array<RpcServer | null>;
}

/** A group of `size` meta nodes on loopback, each with its RPC server and a directory under `dir`. */
async function startGroup(dir: string, size: number): Promise<Group> {
  const servers = Array.from({ length: size }, () => createRpcServer({ host: '127.0.0.1', port: 0 }));
  const ports = await Promise.all(servers.map(async (server) => (await server.listen()).port));
  const peers = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  const stores = await Promise.all(
    peers.map((peer, i) =>
      openRaftMetaStore({
        id: peer.id,
        peers,
        dir: join(dir, `node-${peer.id}`),
        rpcServer: servers[i],
        tickMs: 10,
        snapshotEntries: 50,
      }),
    ),
  );
  return { peers, stores, servers };
}

async function stopGroup(group: Group): Promise<void> {
  await Promise.all(group.stores.filter((store) => store !== null).map((store) => store.close()));
  await Promise.all(group.servers.filter((server) => server !== null).map((server) => server.close()));
}

/** The remote client over a fresh group; closing it closes the group too. */
async function openRemote(dir: string, size: number): Promise<MetaStore> {
  const group = await startGroup(dir, size);
  // The last node first: the client must find its way to the leader.
  const remote = connectRemoteMetaStore({ nodes: [...group.peers].reverse() });
  let closing: Promise<void> | undefined;
  return {
    get: (key) => remote.get(key),
    put: (key, value, options) => remote.put(key, value, options),
    delete: (key, options) => remote.delete(key, options),
    list: (prefix, options) => remote.list(prefix, options),
    watch: (prefix, listener, options) => remote.watch(prefix, listener, options),
    revision: () => remote.revision(),
    close: () =>
      (closing ??= (async () => {
        await remote.close();
        await stopGroup(group);
      })()),
  };
}

describeMetaStore('RemoteMetaStore, one meta node', { open: (dir) => openRemote(dir, 1), persistent: true });
describeMetaStore('RemoteMetaStore, three meta nodes', {
  open: (dir) => openRemote(dir, 3),
  persistent: true,
});

describe('RemoteMetaStore across a leader change', () => {
  const tempDir = useTempDirs();
  let group: Group | null = null;
  let remote: RemoteMetaStore | null = null;

  afterEach(async () => {
    await remote?.close();
    if (group !== null) await stopGroup(group);
    remote = null;
    group = null;
  });

  it('follows the new leader and resumes its watch from the last revision, missing nothing', async () => {
    group = await startGroup(await tempDir(), 3);
    remote = connectRemoteMetaStore({ nodes: group.peers, requestTimeoutMs: 5000 });
    const client = remote;
    await client.revision();
    const oldLeader = client.currentNode;
    expect(group.stores[oldLeader - 1]!.status().role).toBe('leader');

    // Watched through the leader, which then goes away.
    const events: MetaEvent[] = [];
    const watch = client.watch('/f/', (event) => events.push(event));
    const acknowledged = new Map<string, number>();
    const write = async (key: string): Promise<void> => {
      for (;;) {
        try {
          acknowledged.set(key, await client.put(key, text(key)));
          return;
        } catch (error) {
          // Unknown outcome during the change: write again (the value is the same).
          if (!isRobustMQError(error, ErrorCode.Unavailable)) throw error;
        }
      }
    };
    for (let i = 0; i < 20; i++) await write(`/f/${i}`);
    await group.servers[oldLeader - 1]!.close();
    await group.stores[oldLeader - 1]!.close();
    group.servers[oldLeader - 1] = null;
    group.stores[oldLeader - 1] = null;
    for (let i = 20; i < 40; i++) await write(`/f/${i}`);

    const newLeader = client.currentNode;
    expect(newLeader).not.toBe(oldLeader);
    expect(group.stores[newLeader - 1]!.status().role).toBe('leader');
    const last = Math.max(...acknowledged.values());
    await vi.waitFor(() => expect(events.at(-1)?.revision).toBeGreaterThanOrEqual(last), {
      timeout: 5000,
      interval: 10,
    });
    const revisions = events.map((event) => event.revision);
    expect(revisions).toEqual([...new Set(revisions)].sort((a, b) => a - b));
    for (const revision of acknowledged.values()) expect(revisions).toContain(revision);
    expect((await client.list('/f/')).map((entry) => entry.key).sort()).toEqual(
      [...acknowledged.keys()].sort(),
    );
    watch.close();
  }, 20_000);

  it('fails a call with UNAVAILABLE when no meta node answers', async () => {
    const unreachable = createRpcServer({ host: '127.0.0.1', port: 0 });
    const { port } = await unreachable.listen();
    await unreachable.close();
    remote = connectRemoteMetaStore({
      nodes: [{ id: 1, host: '127.0.0.1', port }],
      requestTimeoutMs: 300,
      connectTimeoutMs: 50,
    });
    await expect(remote.get('/k')).rejects.toMatchObject({ code: ErrorCode.Unavailable });
    await expect(remote.put('/k', text('v'))).rejects.toMatchObject({ code: ErrorCode.Unavailable });
  });
});
