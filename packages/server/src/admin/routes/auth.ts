import type { onRequestAsyncHookHandler } from 'fastify';
import { z } from 'zod';
import { verifyPassword } from '../../auth/passwords.js';
import type { AdminApi } from '../api.js';
import { ApiError } from '../errors.js';
import { errorResponse } from '../schemas.js';
import type { ZodApp } from '../zod-app.js';

/** Routes anyone may call: logging in, and the API's own description. */
const OPEN_ROUTES = new Set(['/api/v1/login', '/api/openapi.json']);

// Compared in constant time so a failed login does not reveal whether the user exists.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

/** Every `/api/*` route but the open ones needs a live token of a superuser. */
export function authHook(api: AdminApi): onRequestAsyncHookHandler {
  return async (request) => {
    const path = request.url.split('?')[0]!;
    if (OPEN_ROUTES.has(path)) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      throw new ApiError(
        'UNAUTHENTICATED',
        'missing token: log in with POST /api/v1/login and send Authorization: Bearer <token>',
      );
    }
    const session = api.tokens.verify(match[1]!);
    if (session === null)
      throw new ApiError('UNAUTHENTICATED', 'the token is unknown or expired; log in again');
    const { username } = session;
    const user = await api.meta().users.get(username);
    if (user === null)
      throw new ApiError('UNAUTHENTICATED', `user ${username} no longer exists; log in again`);
    // Also catches a change made through another node, which cannot reach this node's tokens.
    if (user.passwordHash !== session.passwordHash) {
      throw new ApiError(
        'UNAUTHENTICATED',
        `the password of ${username} changed (or the user was made again) since this token was issued; log in again`,
      );
    }
    if (!user.superuser) throw new ApiError('FORBIDDEN', `user ${username} is not a superuser`);
  };
}

export function loginRoutes(app: ZodApp, api: AdminApi): void {
  app.post(
    '/api/v1/login',
    {
      schema: {
        summary: 'Log in: trade a superuser name and password for a token',
        tags: ['auth'],
        security: [],
        body: z.strictObject({ username: z.string().min(1).max(128), password: z.string().min(1).max(1024) }),
        response: {
          200: z.object({
            token: z.string().describe('Send as Authorization: Bearer <token>'),
            expiresAt: z.number().int().describe('Milliseconds since the epoch'),
          }),
          401: errorResponse,
          403: errorResponse,
        },
      },
    },
    async (request) => {
      const { username, password } = request.body;
      const user = await api.meta().users.get(username);
      const ok = await verifyPassword(Buffer.from(password, 'utf8'), user?.passwordHash ?? DUMMY_HASH);
      if (!ok || user === null) {
        api.options.logger.warn({ username, remoteAddress: request.ip }, 'admin login failed');
        throw new ApiError('UNAUTHENTICATED', 'wrong user name or password');
      }
      if (!user.superuser) throw new ApiError('FORBIDDEN', `user ${username} is not a superuser`);
      return api.tokens.issue(username, user.passwordHash);
    },
  );
}
