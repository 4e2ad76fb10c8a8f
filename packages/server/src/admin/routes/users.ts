import { z } from 'zod';
import { USERNAME } from '../../auth/users.js';
import type { AdminApi } from '../api.js';
import { ApiError } from '../errors.js';
import { authErrors, errorResponse, noContent, page, pageQuery, paginate } from '../schemas.js';
import type { ZodApp } from '../zod-app.js';

const userName = z.string().regex(USERNAME, 'use 1 to 128 of A-Z a-z 0-9 . _ @ -');
const password = z.string().min(1).max(1024);
const user = z.object({
  name: z.string(),
  superuser: z.boolean(),
  createdAt: z.number().describe('Milliseconds since the epoch'),
});
const nameParams = z.strictObject({ name: z.string() });

/** Runs the given work one at a time, each after the last has settled. */
function oneAtATime(): <T>(work: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (work) => {
    const run = last.then(work, work);
    last = run.catch(() => undefined);
    return run;
  };
}

export function userRoutes(app: ZodApp, api: AdminApi): void {
  // Two deletions at once would each count the other's superuser as left and remove both.
  const deletion = oneAtATime();
  app.get(
    '/api/v1/users',
    {
      schema: {
        summary: 'List users',
        tags: ['users'],
        querystring: pageQuery,
        response: { 200: page(user), ...authErrors },
      },
    },
    async (request) => {
      const { users } = api.meta();
      const { limit, after } = request.query;
      return paginate(
        limit,
        (n) => users.list({ ...(after !== undefined && { after }), limit: n }),
        (u) => u.name,
      );
    },
  );

  app.post(
    '/api/v1/users',
    {
      schema: {
        summary: 'Create a user (password stored as an scrypt hash, plus SCRAM keys for Kafka SASL)',
        tags: ['users'],
        body: z.strictObject({ name: userName, password, superuser: z.boolean().default(false) }),
        response: { 201: user, 400: errorResponse, 409: errorResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      const { users } = api.meta();
      const { name, superuser } = request.body;
      await users.create(name, request.body.password, { superuser });
      const created = await users.get(name);
      api.options.logger.info({ user: name, superuser }, 'user created through the admin API');
      return reply.code(201).send({ name, superuser, createdAt: created?.createdAt ?? Date.now() });
    },
  );

  app.delete(
    '/api/v1/users/:name',
    {
      schema: {
        summary: 'Delete a user (not the last superuser)',
        tags: ['users'],
        params: nameParams,
        response: { 204: noContent, 404: errorResponse, 409: errorResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      const { users } = api.meta();
      const name = request.params.name;
      await deletion(async () => {
        const found = await users.get(name);
        if (found === null) throw new ApiError('NOT_FOUND', `user ${name} does not exist`);
        if (found.superuser && (await superuserCount(api)) <= 1) {
          throw new ApiError('CONFLICT', `${name} is the last superuser; create another one first`);
        }
        if (!(await users.delete(name))) throw new ApiError('NOT_FOUND', `user ${name} does not exist`);
      });
      api.options.logger.info({ user: name }, 'user deleted through the admin API');
      return reply.code(204).send();
    },
  );

  app.put(
    '/api/v1/users/:name/password',
    {
      schema: {
        summary: "Change a user's password",
        tags: ['users'],
        params: nameParams,
        body: z.strictObject({ password }),
        response: { 204: noContent, 400: errorResponse, 404: errorResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      await api.meta().users.setPassword(request.params.name, request.body.password);
      api.options.logger.info({ user: request.params.name }, 'password changed through the admin API');
      return reply.code(204).send();
    },
  );
}

async function superuserCount(api: AdminApi): Promise<number> {
  const { users } = api.meta();
  let count = 0;
  let after: string | undefined;
  for (;;) {
    const batch = await users.list({ ...(after !== undefined && { after }), limit: 1000 });
    count += batch.filter((u) => u.superuser).length;
    if (batch.length < 1000) return count;
    after = batch[batch.length - 1]!.name;
  }
}
