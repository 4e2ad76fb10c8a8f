import { z } from 'zod';
import { LOG_LEVELS } from '../../config/schema.js';
import type { AdminApi } from '../api.js';
import { errorResponse, authErrors } from '../schemas.js';
import { flattenSettings } from '../settings-view.js';
import type { ZodApp } from '../zod-app.js';

/** Settings that take effect at once when changed through the API (not written back to the file). */
const RUNTIME = ['log.level', 'auth.allow_anonymous', 'auth.acl_default'];
const runtimeSettings = z.strictObject(
  {
    'log.level': z.enum(LOG_LEVELS).optional(),
    'auth.allow_anonymous': z.boolean().optional(),
    'auth.acl_default': z.enum(['allow', 'deny']).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `not a setting that can change at runtime (those are ${RUNTIME.join(', ')}); change it in the config file and restart`
        : undefined,
  },
);

const configView = z.object({
  settings: z.record(z.string(), z.unknown()).describe('Effective config by dotted name; secrets masked'),
  runtime: z.array(z.string()).describe('Settings PATCH /api/v1/config can change now'),
});

function view(api: AdminApi) {
  const { config, logLevel, authSettings } = api.options;
  const settings = flattenSettings(config);
  settings['log.level'] = logLevel.level;
  settings['auth.allow_anonymous'] = authSettings.allowAnonymous;
  settings['auth.acl_default'] = authSettings.aclDefault;
  return { settings, runtime: RUNTIME };
}

export function configRoutes(app: ZodApp, api: AdminApi): void {
  app.get(
    '/api/v1/config',
    {
      schema: {
        summary: 'The effective config (secrets masked) and which settings can change at runtime',
        tags: ['config'],
        response: { 200: configView, ...authErrors },
      },
    },
    () => view(api),
  );

  app.patch(
    '/api/v1/config',
    {
      schema: {
        summary: `Change settings at runtime (${RUNTIME.join(', ')}); not written to the config file`,
        tags: ['config'],
        body: runtimeSettings,
        response: { 200: configView, 400: errorResponse, ...authErrors },
      },
    },
    (request) => {
      // The schema has checked every value, so applying them cannot fail halfway.
      const change = request.body;
      const { logLevel, authSettings, logger } = api.options;
      if (change['log.level'] !== undefined) logLevel.level = change['log.level'];
      if (change['auth.allow_anonymous'] !== undefined) {
        authSettings.allowAnonymous = change['auth.allow_anonymous'];
      }
      if (change['auth.acl_default'] !== undefined) authSettings.aclDefault = change['auth.acl_default'];
      logger.info({ change }, 'config changed through the admin API');
      return view(api);
    },
  );
}
