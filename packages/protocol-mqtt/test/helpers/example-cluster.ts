import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { startServer, type MqttServer } from './server.js';

/** The example a user starts a cluster of stateless brokers from (robustmq-server's README). */
const EXAMPLES = join(
  dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json')),
  'examples',
  'shared-journal',
);

/** How long a silent broker counts as live in these clusters: short, so that a kill is felt soon. */
export const SESSION_TIMEOUT_MS = 1500;

/** The admin password of every node of these clusters. */
export const ADMIN_PASSWORD = 'cluster-admin-pw';

/** A port free on loopback now, for the journal node's internal port (brokers are told it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Flags every node of the example gets here: free ports, quick heartbeats, JSON logs. */
function commonFlags(rpcPort: number): string[] {
  return [
    '--data-dir',
    'data',
    '--http-port',
    '0',
    '--set',
    `cluster.meta_nodes=["1@127.0.0.1:${rpcPort}"]`,
    '--set',
    'cluster.tick_ms=20',
    '--set',
    'cluster.broker_heartbeat_interval_ms=100',
    '--set',
    `cluster.broker_session_timeout_ms=${SESSION_TIMEOUT_MS}`,
    '--set',
    'log.format="json"',
    '--set',
    `admin.password="${ADMIN_PASSWORD}"`,
  ];
}

/** The meta and journal node of the example: no protocols, the sessions of both brokers. */
export function startExampleJournal(rpcPort: number): Promise<MqttServer> {
  return startServer({
    config: {
      file: join(EXAMPLES, 'journal.toml'),
      flags: [...commonFlags(rpcPort), '--set', `rpc.port=${rpcPort}`],
    },
  });
}

/** Broker 2 or 3 of the example, on free ports; again in `dir`, if given, with the test's `flags`. */
export function startExampleBroker(
  nodeId: number,
  rpcPort: number,
  options: { dir?: string; flags?: readonly string[] } = {},
): Promise<MqttServer> {
  return startServer({
    ...(options.dir === undefined ? {} : { dir: options.dir }),
    config: {
      file: join(EXAMPLES, `broker-${nodeId}.toml`),
      flags: [
        ...commonFlags(rpcPort),
        '--mqtt-port',
        '0',
        '--kafka-port',
        '0',
        '--amqp-port',
        '0',
        '--set',
        'rpc.port=0',
        '--set',
        `storage.address="127.0.0.1:${rpcPort}"`,
        ...(options.flags ?? []),
      ],
    },
  });
}
