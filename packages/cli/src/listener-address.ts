import { getJson } from './api.js';
import { serverHost } from './messages.js';

interface Listener {
  protocol: string;
  transport: string;
  port: number;
}

/**
 * Where a protocol's plain TCP listener is: the host the admin API was reached through and the
 * port the node reports in `/health/ready`, so a node started on other ports needs no flag. Falls
 * back to the protocol's default port when the node does not answer or has no such listener.
 */
export async function listenerAddress(
  server: string,
  protocol: string,
  defaultPort: number,
): Promise<string> {
  const host = serverHost(server);
  let port = defaultPort;
  try {
    const { body } = await getJson<{ listeners?: Listener[] }>(server, '/health/ready', 2000);
    const listener = body.listeners?.find((l) => l.protocol === protocol && l.transport === 'tcp');
    if (listener) port = listener.port;
  } catch {
    // An unreachable admin API is no reason not to try the broker itself.
  }
  return `${host}:${port}`;
}
