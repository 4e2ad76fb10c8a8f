import { validateTopicFilter } from '@robustmq/core';
import { z } from 'zod';
import { USERNAME } from '../../auth/users.js';
import { ACL_ACTIONS } from '../../acl/rules.js';
import type { AdminApi } from '../api.js';
import { ApiError } from '../errors.js';
import { authErrors, errorResponse, noContent, page, pageQuery, paginate } from '../schemas.js';
import type { ZodApp } from '../zod-app.js';

const action = z.enum(ACL_ACTIONS);
const permission = z.enum(['allow', 'deny']);
const rule = z.object({
  id: z.string(),
  principal: z.string().describe('A user name, or * for everyone'),
  action,
  topic: z.string().describe('MQTT-style topic filter: + one level, # the rest'),
  permission,
});

function isFilter(topic: string): boolean {
  try {
    validateTopicFilter(topic);
    return true;
  } catch {
    return false;
  }
}

export function aclRoutes(app: ZodApp, api: AdminApi): void {
  app.get(
    '/api/v1/acls',
    {
      schema: {
        summary: 'List ACL rules',
        tags: ['acls'],
        querystring: pageQuery,
        response: { 200: page(rule), ...authErrors },
      },
    },
    async (request) => {
      const { acls } = api.meta();
      const { limit, after } = request.query;
      return paginate(
        limit,
        (n) => acls.list({ ...(after !== undefined && { after }), limit: n }),
        (r) => r.id,
      );
    },
  );

  app.post(
    '/api/v1/acls',
    {
      schema: {
        summary:
          'Create an ACL rule. Superusers bypass ACLs; a matching deny wins over allow; with no match, auth.acl_default decides',
        tags: ['acls'],
        body: z.strictObject({
          principal: z.string().refine((p) => p === '*' || USERNAME.test(p), 'must be a user name or *'),
          action,
          topic: z.string().refine(isFilter, 'must be a topic filter: + and # only as whole levels, # last'),
          permission,
        }),
        response: { 201: rule, 400: errorResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      const created = await api.meta().acls.create(request.body);
      api.options.logger.info({ acl: created }, 'ACL rule created through the admin API');
      return reply.code(201).send(created);
    },
  );

  app.delete(
    '/api/v1/acls/:id',
    {
      schema: {
        summary: 'Delete an ACL rule',
        tags: ['acls'],
        params: z.strictObject({ id: z.string() }),
        response: { 204: noContent, 404: errorResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      if (!(await api.meta().acls.delete(request.params.id))) {
        throw new ApiError('NOT_FOUND', `no ACL rule ${request.params.id}`);
      }
      api.options.logger.info({ acl: request.params.id }, 'ACL rule deleted through the admin API');
      return reply.code(204).send();
    },
  );
}
