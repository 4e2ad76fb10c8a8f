import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectRpc, mutualTls } from '@robustmq/rpc';
import {
  exampleClusterArgs,
  freePorts,
  freePort,
  runServer,
  startServer,
  tempDir,
  type ServerProcess,
} from './helpers/server-process.js';

// Nodes whose [rpc] section names a certificate, its key and the cluster's CA speak only TLS on the
// internal port, and take only nodes whose certificates that CA signed: storage, meta, Raft and
// the messages between brokers all cross it.

const SHARED_JOURNAL = fileURLToPath(new URL('../examples/shared-journal', import.meta.url));

/** Runs `robustmq-server certs ...` as a user would, failing on a non-zero exit. */
async function certs(...args: string[]): Promise<void> {
  const made = await runServer({ args: ['certs', ...args] });
  if (made.code !== 0) throw new Error(`certs ${args.join(' ')}: ${made.stderr}`);
}

const files = tempDir('rpc-tls');
afterAll(() => files.remove());
const clusterDir = join(files.path, 'cluster');
const strangerDir = join(files.path, 'stranger');

/** The flags that give node `id` its certificate (made in beforeAll). */
function tlsFlags(id: number): string[] {
  return [
    '--set',
    `rpc.tls_cert="${join(clusterDir, `node-${id}.pem`)}"`,
    '--set',
    `rpc.tls_key="${join(clusterDir, `node-${id}-key.pem`)}"`,
    '--set',
    `rpc.tls_ca="${join(clusterDir, 'ca.pem')}"`,
  ];
}

beforeAll(async () => {
  await certs('ca', '--dir', clusterDir);
  for (const id of [1, 2, 3])
    await certs('node', '--dir', clusterDir, '--name', `node-${id}`, '--host', '127.0.0.1');
  await certs('ca', '--dir', strangerDir);
  await certs('node', '--dir', strangerDir, '--name', 'stranger', '--host', '127.0.0.1');
}, 60_000);

interface Listener {
  protocol: string;
  name: string;
  transport: string;
}

async function listeners(server: ServerProcess): Promise<Listener[]> {
  const body = (await (await fetch(`${server.httpUrl}/health/ready`)).json()) as { listeners: Listener[] };
  return body.listeners;
}

/** Waits until `server` has logged that the live brokers are `ids`. */
async function waitForBrokers(server: ServerProcess, ids: number[]): Promise<void> {
  const wanted = JSON.stringify(ids);
  await vi.waitFor(
    () =>
      expect(
        server.logs.some(
          (l) => l.msg === 'brokers of the cluster changed' && JSON.stringify(l.brokers) === wanted,
        ),
      ).toBe(true),
    { timeout: 10_000, interval: 50 },
  );
}

describe('the internal port over TLS', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('carries a journal node and two brokers, and refuses nodes without the CA’s certificate', async () => {
    const dir = tempDir('rpc-tls-shared');
    cleanups.push(dir.remove);
    const rpcPort = await freePort();
    const common = (id: number) => [
      '--data-dir',
      join(dir.path, `node-${id}`),
      '--http-port',
      '0',
      '--set',
      `cluster.meta_nodes=["1@127.0.0.1:${rpcPort}"]`,
      '--set',
      'cluster.tick_ms=20',
      '--set',
      'cluster.broker_heartbeat_interval_ms=100',
      '--set',
      'log.format="json"',
    ];
    const brokerArgs = (config: number, id: number) => [
      '--config',
      join(SHARED_JOURNAL, `broker-${config}.toml`),
      ...common(id),
      '--set',
      `node_id=${id}`,
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
      '--set',
      'storage.connect_timeout_ms=1000',
    ];
    const start = async (args: string[]) => {
      const server = await startServer({ args, cwd: dir.path });
      cleanups.push(() => server.stop('SIGKILL'));
      return server;
    };
    const journal = await start([
      '--config',
      join(SHARED_JOURNAL, 'journal.toml'),
      ...common(1),
      '--set',
      `rpc.port=${rpcPort}`,
      ...tlsFlags(1),
    ]);
    const [broker2, broker3] = await Promise.all([
      start([...brokerArgs(2, 2), ...tlsFlags(2)]),
      start([...brokerArgs(3, 3), ...tlsFlags(3)]),
    ]);
    await Promise.all([waitForBrokers(broker2, [2, 3]), waitForBrokers(broker3, [2, 3])]);
    // The journal node serves its storage and the meta service on one port.
    expect(await listeners(journal)).toContainEqual(
      expect.objectContaining({ protocol: 'meta', name: 'rpc', transport: 'tls' }),
    );
    expect(await listeners(broker2)).toContainEqual(
      expect.objectContaining({ protocol: 'broker', name: 'rpc', transport: 'tls' }),
    );

    // Published on broker 2, taken by a subscriber on broker 3: the message crosses between the
    // brokers, and both store through the journal node.
    const connect = async (server: ServerProcess, clientId: string) => {
      const client = await connectAsync(`mqtt://127.0.0.1:${server.port('mqtt/tcp')}`, {
        clientId,
        reconnectPeriod: 0,
      });
      cleanups.push(() => client.endAsync(true));
      return client;
    };
    const subscriber: MqttClient = await connect(broker3, 'sub-on-3');
    const received: string[] = [];
    subscriber.on('message', (_topic, payload) => received.push(payload.toString()));
    await subscriber.subscribeAsync('plant/+/temperature', { qos: 1 });
    const publisher = await connect(broker2, 'pub-on-2');
    const sent = Array.from({ length: 50 }, (_, i) => `reading ${i}`);
    for (const text of sent) await publisher.publishAsync('plant/7/temperature', text, { qos: 1 });
    await vi.waitFor(() => expect(received).toEqual(sent), { timeout: 10_000, interval: 50 });

    // Without a certificate, or with one another CA signed, the journal's port does not answer.
    const plain = connectRpc({ host: '127.0.0.1', port: rpcPort, connectTimeoutMs: 300 });
    const impostor = connectRpc({
      host: '127.0.0.1',
      port: rpcPort,
      tls: mutualTls({
        cert: readFileSync(join(strangerDir, 'stranger.pem')),
        key: readFileSync(join(strangerDir, 'stranger-key.pem')),
        ca: readFileSync(join(clusterDir, 'ca.pem')),
      }).client,
      connectTimeoutMs: 300,
    });
    cleanups.push(
      () => plain.close(),
      () => impostor.close(),
    );
    await expect(plain.waitConnected(1000)).rejects.toThrow(/not connected/);
    await expect(impostor.waitConnected(1000)).rejects.toThrow(/not connected/);
    expect(journal.logs.filter((l) => l.msg === 'rpc TLS handshake failed').length).toBeGreaterThanOrEqual(2);

    // A broker configured without the certificate stops at start-up, saying why.
    const untrusted = await runServer({ args: brokerArgs(3, 4), cwd: dir.path });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/no journal server answered at 127\.0\.0\.1:\d+ within 1000 ms/);
  }, 60_000);

  it('forms a three-node meta group whose Raft traffic is TLS', async () => {
    const dir = tempDir('rpc-tls-raft');
    cleanups.push(dir.remove);
    const rpcPorts = await freePorts(3);
    const args = (id: number) => [...exampleClusterArgs(id, rpcPorts, dir.path), ...tlsFlags(id)];
    const nodes = await Promise.all(
      [1, 2, 3].map(async (id) => {
        const server = await startServer({ args: args(id), cwd: dir.path });
        cleanups.push(() => server.stop('SIGKILL'));
        return server;
      }),
    );
    await vi.waitFor(
      async () => {
        const bodies = await Promise.all(
          nodes.map(
            async (node) =>
              (await (await fetch(`${node.httpUrl}/health/ready`)).json()) as {
                meta?: { leader: number; voters: number[] };
              },
          ),
        );
        const leaders = new Set(bodies.map((body) => body.meta?.leader));
        expect(leaders.size).toBe(1);
        expect([...leaders][0]).toBeGreaterThan(0);
        for (const body of bodies) expect(body.meta?.voters).toEqual([1, 2, 3]);
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(await listeners(nodes[0]!)).toContainEqual(
      expect.objectContaining({ protocol: 'meta', name: 'rpc', transport: 'tls' }),
    );
  }, 60_000);
});
