import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { ADMIN_PASSWORD } from './admin-api.js';
import { startServer, type KafkaServer } from './server.js';

/** The example a user starts a cluster of stateless brokers from (robustmq-server's README). */
const EXAMPLES = join(
  dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json')),
  'examples',
  'shared-journal',
);

/** A port free on loopback now, for the journal node's internal port (brokers are told it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Flags every node of the example gets here: free ports, JSON logs, a known admin password. */
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
    'log.format="json"',
    '--set',
    `admin.password="${ADMIN_PASSWORD}"`,
  ];
}

/** Where to start a node again (a killed one's directory), and settings of the test's own. */
export interface NodeOptions {
  dir?: string;
  flags?: readonly string[];
}

/** The meta and journal node of the example: no protocols, the shards of both brokers. */
export function startExampleJournal(rpcPort: number, options: NodeOptions = {}): Promise<KafkaServer> {
  return startServer({
    ...(options.dir === undefined ? {} : { dir: options.dir }),
    config: {
      file: join(EXAMPLES, 'journal.toml'),
      flags: [...commonFlags(rpcPort), '--set', `rpc.port=${rpcPort}`, ...(options.flags ?? [])],
    },
  });
}

/** Broker 2 or 3 of the example, as a user starts it, on free ports. */
export function startExampleBroker(
  nodeId: number,
  rpcPort: number,
  options: NodeOptions = {},
): Promise<KafkaServer> {
  return startServer({
    ...(options.dir === undefined ? {} : { dir: options.dir }),
    config: {
      file: join(EXAMPLES, `broker-${nodeId}.toml`),
      flags: [
        ...commonFlags(rpcPort),
        '--kafka-port',
        '0',
        '--mqtt-port',
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
