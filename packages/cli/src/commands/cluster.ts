import type { Command } from 'commander';
import { action } from '../context.js';
import { fields, formatSeconds, json, table } from '../output.js';

interface Cluster {
  clusterId: string;
  version: string;
  uptimeSeconds: number;
  nodeId: number;
  nodes: Array<{ id: number; roles: string[]; rpcAddress: string | null; leader: boolean }>;
  metaLeader: number | null;
}

/** `robustmq cluster`: the cluster's nodes, their roles and the meta leader. */
export function registerCluster(program: Command): void {
  program
    .command('cluster')
    .description('show the cluster: id, version, nodes with their roles, and the meta leader')
    .action(
      action(async (context) => {
        const cluster = await context.api.get<Cluster>('/cluster');
        if (context.output === 'json') {
          context.out(json(cluster));
          return;
        }
        context.out(
          fields([
            ['cluster', cluster.clusterId],
            ['version', cluster.version],
            ['node', String(cluster.nodeId)],
            ['uptime', formatSeconds(cluster.uptimeSeconds)],
            ['meta leader', cluster.metaLeader === null ? 'none' : String(cluster.metaLeader)],
          ]) +
            '\n' +
            table(
              ['NODE', 'ROLES', 'RPC ADDRESS', 'LEADER'],
              cluster.nodes.map((n) => [
                String(n.id),
                n.roles.join(','),
                n.rpcAddress ?? '-',
                n.leader ? 'yes' : 'no',
              ]),
            ),
        );
      }),
    );
}
