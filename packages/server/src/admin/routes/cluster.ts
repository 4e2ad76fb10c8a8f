import { z } from 'zod';
import { metaNodes } from '../../roles.js';
import type { AdminApi } from '../api.js';
import { listNodes } from '../nodes.js';
import { authErrors } from '../schemas.js';
import type { ZodApp } from '../zod-app.js';

const clusterView = z.object({
  clusterId: z.string().nullable(),
  version: z.string(),
  uptimeSeconds: z.number().int(),
  nodeId: z.number().int(),
  nodes: z.array(
    z.object({
      id: z.number().int(),
      roles: z.array(z.string()),
      rpcAddress: z.string().nullable(),
      leader: z.boolean().describe('Whether this node leads the meta group'),
    }),
  ),
  metaLeader: z.number().int().nullable().describe('Node id of the meta leader, null while none is known'),
});

export function clusterRoutes(app: ZodApp, api: AdminApi): void {
  app.get(
    '/api/v1/cluster',
    {
      schema: {
        summary: 'Cluster status: nodes and roles, the meta leader, this node version and uptime',
        tags: ['cluster'],
        response: { 200: clusterView, ...authErrors },
      },
    },
    async () => {
      const { meta } = api.meta();
      const { config } = api.options;
      const snapshot = api.options.status.snapshot();
      // Without [cluster] the meta store is this node's own, so this node leads it.
      const metaLeader = snapshot.meta ? snapshot.meta.leader || null : snapshot.nodeId;
      const registered = await listNodes(meta);
      const nodes = registered.map((node) => ({
        id: node.id,
        roles: node.roles,
        rpcAddress: node.rpcAddress,
      }));
      if (config.cluster !== undefined) {
        // Meta members that never started still belong in the picture.
        for (const member of metaNodes(config)) {
          if (!nodes.some((node) => node.id === member.id)) {
            nodes.push({ id: member.id, roles: ['meta'], rpcAddress: `${member.host}:${member.port}` });
          }
        }
        nodes.sort((a, b) => a.id - b.id);
      }
      return {
        clusterId: snapshot.clusterId,
        version: snapshot.version,
        uptimeSeconds: snapshot.uptimeSeconds,
        nodeId: snapshot.nodeId,
        nodes: nodes.map((node) => ({ ...node, leader: node.id === metaLeader })),
        metaLeader,
      };
    },
  );
}
