import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LineClient } from './helpers/line-client.js';
import { linesProject } from './helpers/lines-project.js';
import {
  exampleClusterArgs,
  freePorts,
  runServer,
  startServer,
  tempDir,
  type ServerProcess,
} from './helpers/server-process.js';

interface ReadyBody {
  clusterId: string | null;
  meta?: { leader: number; term: number; commitIndex: number; appliedIndex: number; voters: number[] };
}

async function ready(server: ServerProcess): Promise<ReadyBody> {
  const response = await fetch(`${server.httpUrl}/health/ready`);
  return (await response.json()) as ReadyBody;
}

/**
 * Three nodes from examples/cluster (on free ports, with the test-only lines protocol for meta
 * writes) form one meta Raft group, lose their leader to kill -9, elect another, keep every
 * acknowledged write, and take the old leader back.
 */
describe('a three-node meta cluster', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('fails over when the leader is killed and converges when it returns', async () => {
    const project = linesProject();
    cleanups.push(project.remove);
    const rpcPorts = await freePorts(3);
    const args = (id: number) => [
      ...exampleClusterArgs(id, rpcPorts, project.path),
      '--set',
      // The example configs set Kafka and AMQP ports, so those plugins are loaded too.
      'protocols=["@robustmq/protocol-mqtt", "@robustmq/protocol-kafka", "@robustmq/protocol-amqp", "robustmq-protocol-lines"]',
      '--set',
      'lines.port=0',
    ];
    const start = async (id: number) => {
      const server = await startServer({ args: args(id), cwd: project.path });
      cleanups.push(() => server.stop('SIGKILL'));
      return server;
    };
    // Each node waits for a quorum before it is ready, so they start together.
    const nodes = await Promise.all([1, 2, 3].map(start));

    const agreedLeader = (among: ServerProcess[], not = 0) =>
      vi.waitFor(
        async () => {
          const bodies = await Promise.all(among.map(ready));
          const leaders = new Set(bodies.map((body) => body.meta?.leader));
          expect(leaders.size).toBe(1);
          const [leader] = leaders;
          expect(leader).toBeGreaterThan(0);
          expect(leader).not.toBe(not);
          return { leader: leader!, bodies };
        },
        { timeout: 10_000, interval: 50 },
      );

    const { leader: first, bodies } = await agreedLeader(nodes);
    const clusterId = bodies[0]!.clusterId;
    expect(clusterId).toMatch(/^[0-9a-f-]{36}$/);
    for (const body of bodies) {
      expect(body.clusterId).toBe(clusterId);
      expect(body.meta).toMatchObject({ voters: [1, 2, 3] });
      expect(body.meta!.term).toBeGreaterThan(0);
    }

    const clients = new Map<number, LineClient>();
    const client = async (id: number, server: ServerProcess) => {
      const c = await LineClient.connect(server.port('lines/tcp'));
      clients.set(id, c);
      cleanups.push(() => c.close());
      return c;
    };
    for (const [i, node] of nodes.entries()) await client(i + 1, node);

    const acknowledged = new Map<string, string>();
    /** Writes through node `id`; a write refused during an election is tried again. */
    const write = async (id: number, key: string, value: string) => {
      await vi.waitFor(
        async () => expect(await clients.get(id)!.request(`META SET ${key} ${value}`)).toMatch(/^OK \d+$/),
        { timeout: 15_000, interval: 100 },
      );
      acknowledged.set(key, value);
    };
    for (let i = 0; i < 9; i++) await write((i % 3) + 1, `k${i}`, `before-${i}`);

    await nodes[first - 1]!.stop('SIGKILL');
    clients.get(first)!.close();
    const survivors = [1, 2, 3].filter((id) => id !== first);
    const { leader: second } = await agreedLeader(
      survivors.map((id) => nodes[id - 1]!),
      first,
    );
    expect(survivors).toContain(second);
    for (let i = 9; i < 21; i++) await write(survivors[i % 2]!, `k${i}`, `after-${i}`);

    nodes[first - 1] = await start(first);
    await client(first, nodes[first - 1]!);
    await vi.waitFor(
      async () => {
        const applied = (await Promise.all(nodes.map(ready))).map((body) => body.meta?.appliedIndex);
        expect(new Set(applied).size).toBe(1);
      },
      { timeout: 15_000, interval: 100 },
    );
    expect((await ready(nodes[first - 1]!)).clusterId).toBe(clusterId);
    for (const id of [1, 2, 3]) {
      for (const [key, value] of acknowledged) {
        expect(await clients.get(id)!.request(`META GET ${key}`)).toBe(`VALUE ${value}`);
      }
    }
  }, 120_000);

  it('runs meta alone or with the journal as a group member, and refuses meta roles without [cluster]', async () => {
    const dir = tempDir('meta-roles');
    cleanups.push(dir.remove);
    const [rpcPort] = await freePorts(1);
    const common = [
      '--bind',
      '127.0.0.1',
      '--http-port',
      '0',
      '--set',
      'log.format="json"',
      '--set',
      `rpc.port=${rpcPort}`,
      '--set',
      `cluster.meta_nodes=["1@127.0.0.1:${rpcPort}"]`,
    ];
    for (const roles of ['meta', 'meta,journal']) {
      const server = await startServer({
        args: ['--roles', roles, '--data-dir', join(dir.path, roles), ...common],
      });
      cleanups.push(() => server.stop('SIGKILL'));
      const body = (await (await fetch(`${server.httpUrl}/health/ready`)).json()) as ReadyBody & {
        listeners: Array<{ protocol: string; port: number }>;
      };
      expect(body.meta).toMatchObject({ leader: 1, voters: [1] });
      expect(body.clusterId).toMatch(/^[0-9a-f-]{36}$/);
      expect(body.listeners.map((l) => l.protocol).sort()).toEqual(['admin', 'meta']);
      expect(server.port('meta/rpc')).toBe(rpcPort);
      expect(await server.stop()).toBe(0);
    }

    const withoutCluster = await runServer({ args: ['--roles', 'meta', '--data-dir', join(dir.path, 'x')] });
    expect(withoutCluster.code).toBe(1);
    expect(withoutCluster.stderr).toContain('set [cluster] meta_nodes');

    const notMember = await runServer({
      args: ['--roles', 'meta,journal', '--data-dir', join(dir.path, 'y'), ...common, '--set', 'node_id=7'],
    });
    expect(notMember.code).toBe(1);
    expect(notMember.stderr).toContain('node_id 7 is not among the meta nodes (1)');
  }, 60_000);
});
