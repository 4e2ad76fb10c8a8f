import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminNode, type AdminNode } from './helpers/admin-node.js';
import { freePort } from './helpers/server-process.js';

/** A node in a meta Raft group of one: the Raft view in the cluster route and the metrics. */
describe('admin API on a meta group member', () => {
  let a: AdminNode;
  let rpcPort: number;
  beforeAll(async () => {
    rpcPort = await freePort();
    a = await startAdminNode([
      `rpc.port=${rpcPort}`,
      `cluster.meta_nodes=["1@127.0.0.1:${rpcPort}"]`,
      'cluster.tick_ms=20',
    ]);
  });
  afterAll(async () => {
    await a.stop();
  });

  it('shows the meta leader and the members with their RPC addresses', async () => {
    const { body } = await a.call('GET', '/api/v1/cluster');
    expect(body).toMatchObject({
      metaLeader: 1,
      nodes: [
        { id: 1, roles: ['meta', 'broker', 'journal'], rpcAddress: `127.0.0.1:${rpcPort}`, leader: true },
      ],
    });
  });

  it('exports the Raft term, commit and applied index, and leader changes', async () => {
    await a.call('POST', '/api/v1/topics', { body: { name: 'raft-metrics' } });
    const metric = async (name: string) => {
      const text = await (await fetch(`${a.url}/metrics`)).text();
      const line = new RegExp(`^${name}\\{node="1"\\} (\\S+)$`, 'm').exec(text);
      return line ? Number(line[1]) : NaN;
    };
    expect(await metric('robustmq_meta_raft_term')).toBeGreaterThanOrEqual(1);
    expect(await metric('robustmq_meta_raft_commit_index')).toBeGreaterThan(1);
    expect(await metric('robustmq_meta_raft_applied_index')).toBeGreaterThan(1);
    expect(await metric('robustmq_meta_raft_is_leader')).toBe(1);
    expect(await metric('robustmq_meta_raft_leader')).toBe(1);
    await expect.poll(() => metric('robustmq_meta_raft_leader_changes_total'), { timeout: 5000 }).toBe(1);
  });
});
