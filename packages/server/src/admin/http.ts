import swagger from '@fastify/swagger';
import fastify, { type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { NodeConfig } from '../config/schema.js';
import type { NodeMetrics } from '../metrics.js';
import type { NodeStatus } from '../node-status.js';
import { checkTlsFiles, readTlsFile } from '../tls-files.js';
import { VERSION } from '../version.js';
import type { AdminApi } from './api.js';
import { answerFrameworkError, installErrorHandlers } from './errors.js';
import { aclRoutes } from './routes/acls.js';
import { authHook, loginRoutes } from './routes/auth.js';
import { clusterRoutes } from './routes/cluster.js';
import { configRoutes } from './routes/config.js';
import { protocolRoutes } from './routes/protocols.js';
import { topicRoutes } from './routes/topics.js';
import { userRoutes } from './routes/users.js';

/** Largest request body the admin API accepts; larger ones get 413 TOO_LARGE. */
export const BODY_LIMIT = 1024 * 1024;

/**
 * Longest path parameter the router takes. Fastify's default (100) is shorter than the names the
 * API addresses (topics up to 249 characters, users up to 128, MQTT client ids and retained topics
 * longer, percent-encoded); Node's 16 KiB limit on the request head bounds a path anyway.
 */
const MAX_PARAM_LENGTH = 16 * 1024;

/** How long a stopping node lets admin requests under way finish before it cuts their connections. */
const CLOSE_GRACE_MS = 2000;

/**
 * Stops the admin server. Closing waits for every connection to end, and one a client keeps alive
 * that was not idle at that moment would hold the stop for the server's keep-alive timeout (72 s),
 * so connections still open after a short grace are cut.
 */
export async function closeAdminHttp(app: FastifyInstance): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}

/**
 * The admin HTTP server: health, metrics, the OpenAPI document and the REST API under `/api/v1`.
 * It is bound first, so `/health/ready` can answer 503 while the rest of the node starts; `api`
 * may be omitted for a server with health and metrics only.
 */
export function createAdminHttp(
  status: NodeStatus,
  metrics: NodeMetrics,
  api?: AdminApi,
  tls?: { cert: Buffer; key: Buffer },
): FastifyInstance {
  // Over HTTPS the server is an https.Server; the routes and hooks are the same, so the instance is
  // used through the one type.
  const options = {
    logger: false,
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: answerFrameworkError,
  } as const;
  const app = (tls === undefined ? fastify(options) : fastify({ ...options, https: tls })) as FastifyInstance;

  app.get('/health/live', (_request, reply) => reply.send({ status: 'live' }));

  app.get('/health/ready', (_request, reply) => {
    const body = status.snapshot();
    return reply.code(body.ready ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_request, reply) => {
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await metrics.render());
  });

  if (api === undefined) return app;

  installErrorHandlers(app, api.options.logger.child({ component: 'admin-api' }));
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'RobustMQ admin API',
        version: VERSION,
        description:
          'Operate a RobustMQ node: cluster, topics, protocol resources, users, ACLs and config. ' +
          'Log in with POST /api/v1/login and send the token as `Authorization: Bearer <token>`.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  void app.register((scoped: FastifyInstance, _options, done) => {
    const routes = scoped.withTypeProvider<ZodTypeProvider>();
    routes.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());
    routes.addHook('onRequest', authHook(api));
    loginRoutes(routes, api);
    clusterRoutes(routes, api);
    topicRoutes(routes, api);
    userRoutes(routes, api);
    aclRoutes(routes, api);
    configRoutes(routes, api);
    protocolRoutes(routes, api);
    done();
  });
  return app;
}

/** The admin API's certificate and key from `[http]`, read once at start-up; none for plain HTTP. */
export function readAdminCertificate(http: NodeConfig['http']): { cert: Buffer; key: Buffer } | undefined {
  if (http.tls_cert === undefined || http.tls_key === undefined) return undefined;
  const pems = {
    cert: readTlsFile(http.tls_cert, 'http.tls_cert'),
    key: readTlsFile(http.tls_key, 'http.tls_key'),
  };
  checkTlsFiles(pems, 'http.tls_cert, http.tls_key');
  return pems;
}
