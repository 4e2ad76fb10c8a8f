import { ExitCode, getJson } from '../api.js';
import { fields, table, type OutputFormat } from '../output.js';

interface Status {
  ready: boolean;
  status: string;
  version: string;
  nodeId: number;
  clusterId: string | null;
  roles: string[];
  uptimeSeconds: number;
  listeners: Array<{ protocol: string; name: string; transport: string; host: string; port: number }>;
}

/** `robustmq status`: the node's readiness, version and listeners. Exit 0 only when ready. */
export async function status(
  server: string,
  output: OutputFormat,
  write: (text: string) => void,
): Promise<number> {
  const { body } = await getJson<Status>(server, '/health/ready');
  if (output === 'json') {
    write(JSON.stringify(body, null, 2) + '\n');
  } else {
    write(
      fields([
        ['status', body.status],
        ['version', body.version],
        ['node', String(body.nodeId)],
        ['cluster', body.clusterId ?? '-'],
        ['roles', body.roles.join(', ')],
        ['uptime', formatUptime(body.uptimeSeconds)],
      ]),
    );
    write('\n');
    write(
      table(
        ['PROTOCOL', 'LISTENER', 'TRANSPORT', 'ADDRESS'],
        body.listeners.map((l) => [l.protocol, l.name, l.transport, `${l.host}:${l.port}`]),
      ),
    );
  }
  return body.ready ? ExitCode.Ok : ExitCode.NotOk;
}

function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', `${s}s`].filter(Boolean).join(' ');
}
