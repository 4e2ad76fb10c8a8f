import type { NodeConfig } from '../config/schema.js';

/** Setting names whose values are secrets: shown masked, never in the clear. */
const SECRET = /password|secret|passphrase|credential|private_key|access_key|(^|[._])token$/i;
export const MASK = '******';

/**
 * The effective config as flat dotted names (`log.level`, `mqtt.port`, `storage.engine`), with
 * secrets masked. Arrays stay whole values.
 */
export function flattenSettings(config: NodeConfig): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  const walk = (prefix: string, value: unknown) => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(prefix ? `${prefix}.${key}` : key, inner);
      return;
    }
    if (value === undefined) return;
    settings[prefix] = SECRET.test(prefix) ? MASK : value;
  };
  walk('', config);
  return settings;
}
