import type { Command } from 'commander';
import { ExitCode, getJson } from '../api.js';
import { action } from '../context.js';
import { fields, formatSeconds, json, table } from '../output.js';

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
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show whether the node is ready, its version, roles and listeners (exit 1 if not ready)')
    .action(
      action(async (context) => {
        const { body } = await getJson<Status>(context.server, '/health/ready');
        if (context.output === 'json') {
          context.out(json(body));
        } else {
          context.out(
            fields([
              ['status', body.status],
              ['version', body.version],
              ['node', String(body.nodeId)],
              ['cluster', body.clusterId ?? '-'],
              ['roles', body.roles.join(', ')],
              ['uptime', formatSeconds(body.uptimeSeconds)],
            ]) +
              '\n' +
              table(
                ['PROTOCOL', 'LISTENER', 'TRANSPORT', 'ADDRESS'],
                body.listeners.map((l) => [l.protocol, l.name, l.transport, `${l.host}:${l.port}`]),
              ),
          );
        }
        return body.ready ? ExitCode.Ok : ExitCode.NotOk;
      }),
    );
}
