import { join } from 'node:path';
import type { MetaStore } from '@robustmq/core';
import { ErrorCode } from '@robustmq/core';
import { createRpcServer } from '@robustmq/rpc';
import type { RaftMetaStore } from '../src/index.js';
import { openRaftMetaStore } from '../src/index.js';
import { describeMetaStore } from '../src/testing/index.js';
import { describe, expect, it } from 'vitest';
import { text, useTempDirs } from './helpers.js';

// A one-node group on a temp directory: no RPC server, leads at once.
describeMetaStore('RaftMetaStore, one node', {
  open: (dir) =>
    openRaftMetaStore({ id: 1, peers: [{ id: 1, host: '127.0.0.1', port: 0 }], dir, tickMs: 10 }),
  persistent: true,
});

// The same with a tiny snapshot interval, so snapshots and compaction happen between writes.
describeMetaStore('RaftMetaStore, one node, snapshotting constantly', {
  open: (dir) =>
    openRaftMetaStore({
      id: 1,
      peers: [{ id: 1, host: '127.0.0.1', port: 0 }],
      dir,
      tickMs: 10,
      snapshotEntries: 3,
    }),
  persistent: true,
});

/**
 * Three nodes on loopback, each with its own RPC server and directory under `dir`. The suite talks
 * to node 1, which may lead or forward to the leader; closing closes the whole group.
 */
async function openGroup(dir: string): Promise<MetaStore> {
  const servers = [1, 2, 3].map(() => createRpcServer({ host: '127.0.0.1', port: 0 }));
  const ports = await Promise.all(servers.map(async (server) => (await server.listen()).port));
  const peers = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  const nodes = await Promise.all(
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
  const [first] = nodes as [RaftMetaStore, ...RaftMetaStore[]];
  let closing: Promise<void> | undefined;
  return {
    get: (key) => first.get(key),
    put: (key, value, options) => first.put(key, value, options),
    delete: (key, options) => first.delete(key, options),
    list: (prefix, options) => first.list(prefix, options),
    watch: (prefix, listener, options) => first.watch(prefix, listener, options),
    revision: () => first.revision(),
    close: () =>
      (closing ??= (async () => {
        await first.close();
        await Promise.all(nodes.map((node) => node.close()));
        await Promise.all(servers.map((server) => server.close()));
      })()),
  };
}

describeMetaStore('RaftMetaStore, three nodes on loopback', { open: openGroup, persistent: true });

describe('RaftMetaStore write batching', () => {
  const tempDir = useTempDirs();

  it('packs puts made together into one entry, each at its own revision and outcome', async () => {
    const store = await openRaftMetaStore({
      id: 1,
      peers: [{ id: 1, host: '127.0.0.1', port: 0 }],
      dir: await tempDir(),
      tickMs: 10,
    });
    try {
      const before = store.status().commitIndex;
      const puts = Array.from({ length: 20 }, (_, i) => store.put(`/k${i}`, text(`v${i}`)));
      const conflict = store.put('/k0', text('late'), { ifRevision: 99 });
      const revisions = await Promise.all(puts);
      await expect(conflict).rejects.toMatchObject({ code: ErrorCode.Conflict });
      expect(revisions).toEqual(Array.from({ length: 20 }, (_, i) => revisions[0]! + i));
      expect(store.status().commitIndex - before).toBe(1);
      expect((await store.get('/k19'))?.value).toEqual(text('v19'));
    } finally {
      await store.close();
    }
  });
});
