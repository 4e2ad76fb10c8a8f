import fastify, { type FastifyInstance } from 'fastify';
import type { NodeMetrics } from '../metrics.js';
import type { NodeStatus } from '../node-status.js';

/**
 * The admin HTTP server: health, metrics, and (as the admin API grows) the REST resources. It is
 * bound first, so `/health/ready` can answer 503 while the rest of the node starts.
 */
export function createAdminHttp(status: NodeStatus, metrics: NodeMetrics): FastifyInstance {
  const app = fastify({ logger: false, bodyLimit: 1024 * 1024 });

  app.get('/health/live', (_request, reply) => reply.send({ status: 'live' }));

  app.get('/health/ready', (_request, reply) => {
    const body = status.snapshot();
    return reply.code(body.ready ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_request, reply) => {
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await metrics.render());
  });

  return app;
}
