import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { freePorts, startServer, tempDir, type ServerProcess } from './helpers/server-process.js';

interface ReadyBody {
  meta?: { leader: number; voters: number[]; appliedIndex: number };
}

async function ready(server: ServerProcess): Promise<ReadyBody> {
  const response = await fetch(`${server.httpUrl}/health/ready`);
  return (await response.json()) as ReadyBody;
}

/**
 * A meta node added to a running three-node group through the configuration: listed in every
 * node's `meta_nodes`, started, and the others restarted one at a time. The leader adds it as a
 * learner, then makes it a voter.
 */
describe('adding a meta node through the configuration', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('makes the new node a voter of the running group after a rolling restart', async () => {
    const dir = tempDir('meta-membership');
    cleanups.push(dir.remove);
    const rpcPorts = await freePorts(4);
    const writeConfig = (id: number, members: number): string => {
      const path = join(dir.path, `meta-${id}.toml`);
      const list = rpcPorts.slice(0, members).map((port, i) => `"${i + 1}@127.0.0.1:${port}"`);
      writeFileSync(
        path,
        [
          `node_id = ${id}`,
          'roles = ["meta"]',
          'bind = "127.0.0.1"',
          `data_dir = "meta-${id}"`,
          '[log]',
          'format = "json"',
          '[http]',
          'port = 0',
          '[rpc]',
          `port = ${rpcPorts[id - 1]}`,
          '[cluster]',
          `meta_nodes = [${list.join(', ')}]`,
          'tick_ms = 50',
        ].join('\n') + '\n',
      );
      return path;
    };
    const start = (config: string): Promise<ServerProcess> => {
      const started = startServer({ args: ['--config', config], cwd: dir.path });
      cleanups.push(async () => (await started.catch(() => null))?.stop('SIGKILL'));
      return started;
    };
    const nodes = await Promise.all([1, 2, 3].map((id) => start(writeConfig(id, 3))));

    // Node 4 joins: it is ready once the group has taken it in.
    const joining = start(writeConfig(4, 4));
    for (const id of [1, 2, 3]) {
      expect(await nodes[id - 1]!.stop('SIGTERM')).toBe(0);
      nodes[id - 1] = await start(writeConfig(id, 4));
    }
    const fourth = await joining;
    const all = [...nodes, fourth];
    await vi.waitFor(
      async () => {
        const bodies = await Promise.all(all.map(ready));
        for (const body of bodies) expect(body.meta?.voters).toEqual([1, 2, 3, 4]);
        expect(new Set(bodies.map((body) => body.meta?.leader)).size).toBe(1);
      },
      { timeout: 30_000, interval: 100 },
    );
    expect(fourth.logs.map((line) => line.msg)).toContain(
      'joining the running meta group; its leader adds this node',
    );
  }, 120_000);
});
