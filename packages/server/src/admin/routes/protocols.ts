import type { AdminResource } from '@robustmq/core';
import { z } from 'zod';
import type { AdminApi } from '../api.js';
import { ApiError } from '../errors.js';
import { authErrors, errorResponse, noContent, page, pageQuery } from '../schemas.js';
import type { ZodApp } from '../zod-app.js';

const item = z.looseObject({ id: z.string() }).describe('A live object of the protocol, with its details');
const resourceParams = z.strictObject({
  protocol: z.string().describe('A loaded protocol plugin: mqtt, kafka, amqp, ...'),
  resource: z
    .string()
    .describe(
      'One of its resources, e.g. mqtt clients, sessions, subscriptions, retained; kafka groups; amqp queues, links',
    ),
});
const itemParams = resourceParams.extend({
  id: z.string().describe('The item id, URL-encoded (a retained topic may hold /)'),
});
const TAGS = ['protocols'];

function resourceOf(api: AdminApi, protocol: string, resource: string): AdminResource {
  const resources = api.protocols.get(protocol);
  if (resources === undefined) {
    const loaded = [...api.protocols.keys()].join(', ') || 'none';
    throw new ApiError('NOT_FOUND', `no protocol ${protocol} with admin resources (loaded: ${loaded})`);
  }
  const found = Object.hasOwn(resources, resource) ? resources[resource] : undefined;
  if (found === undefined) {
    const names = Object.keys(resources).join(', ') || 'none';
    throw new ApiError('NOT_FOUND', `${protocol} has no resource ${resource} (it has: ${names})`);
  }
  return found;
}

/** Each protocol plugin's `adminResources()`, under `/api/v1/<protocol>/<resource>`. */
export function protocolRoutes(app: ZodApp, api: AdminApi): void {
  app.get(
    '/api/v1/:protocol/:resource',
    {
      schema: {
        summary: "List a protocol resource's items",
        tags: TAGS,
        params: resourceParams,
        querystring: pageQuery,
        response: { 200: page(item), 404: errorResponse, ...authErrors },
      },
    },
    async (request) => {
      const { protocol, resource } = request.params;
      const { limit, after } = request.query;
      const found = await resourceOf(api, protocol, resource).list({
        limit,
        ...(after !== undefined && { after }),
      });
      return { items: [...found.items], next: found.next };
    },
  );

  app.get(
    '/api/v1/:protocol/:resource/:id',
    {
      schema: {
        summary: 'One item with its details',
        tags: TAGS,
        params: itemParams,
        response: { 200: item, 404: errorResponse, ...authErrors },
      },
    },
    async (request) => {
      const { protocol, resource, id } = request.params;
      const found = await resourceOf(api, protocol, resource).get(id);
      if (found === null) throw new ApiError('NOT_FOUND', `${protocol} ${resource}: no ${id}`);
      return found;
    },
  );

  app.delete(
    '/api/v1/:protocol/:resource/:id',
    {
      schema: {
        summary:
          'Remove an item (kick an MQTT client, delete a session or a consumer group); 405 if the resource cannot',
        tags: TAGS,
        params: itemParams,
        response: { 204: noContent, 404: errorResponse, 405: errorResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      const { protocol, resource, id } = request.params;
      const target = resourceOf(api, protocol, resource);
      if (target.remove === undefined) {
        throw new ApiError('INVALID_ARGUMENT', `${protocol} ${resource} cannot be removed`, undefined, 405);
      }
      if (!(await target.remove(id))) throw new ApiError('NOT_FOUND', `${protocol} ${resource}: no ${id}`);
      api.options.logger.info({ protocol, resource, id }, 'protocol item removed through the admin API');
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/v1/:protocol/:resource/:id/:action',
    {
      schema: {
        summary: 'Run a named action on an item, e.g. kafka groups reset-offsets',
        tags: TAGS,
        params: itemParams.extend({ action: z.string() }),
        body: z.record(z.string(), z.unknown()).default({}),
        response: {
          200: z.unknown().describe("The action's result"),
          400: errorResponse,
          404: errorResponse,
          ...authErrors,
        },
      },
    },
    async (request) => {
      const { protocol, resource, id, action } = request.params;
      const actions = resourceOf(api, protocol, resource).actions ?? {};
      const run = Object.hasOwn(actions, action) ? actions[action] : undefined;
      if (run === undefined) {
        const names = Object.keys(actions).join(', ') || 'none';
        throw new ApiError('NOT_FOUND', `${protocol} ${resource} has no action ${action} (it has: ${names})`);
      }
      const result = await run(id, request.body);
      api.options.logger.info(
        { protocol, resource, id, action },
        'protocol action run through the admin API',
      );
      return result ?? {};
    },
  );
}
