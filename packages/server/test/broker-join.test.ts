import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, startServer, tempDir, type ServerProcess } from './helpers/server-process.js';

/**
 * Two brokers on one meta and journal node. The second starts while the first is between two
 * heartbeats (ten seconds apart here), so the first can learn of it in time only from the second.
 */
describe('a broker that has just started', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('gets what is published on the other brokers once its subscriber has a SUBACK', async () => {
    const dir = tempDir('broker-join');
    cleanups.push(dir.remove);
    const [rpcPort] = await freePorts(1);
    const common = ['bind = "127.0.0.1"', '[log]', 'format = "json"', '[http]', 'port = 0'];
    const cluster = [
      '[cluster]',
      `meta_nodes = ["1@127.0.0.1:${rpcPort}"]`,
      'broker_heartbeat_interval_ms = 10000',
      'broker_session_timeout_ms = 30000',
    ];
    const write = (name: string, lines: string[]) => {
      writeFileSync(join(dir.path, name), lines.join('\n') + '\n');
      return join(dir.path, name);
    };
    const metaConfig = write('meta.toml', [
      'node_id = 1',
      'roles = ["meta", "journal"]',
      'data_dir = "meta"',
      ...common,
      ...cluster,
      '[rpc]',
      `port = ${rpcPort}`,
    ]);
    const brokerConfig = (id: number) =>
      write(`broker-${id}.toml`, [
        `node_id = ${id}`,
        'roles = ["broker"]',
        `data_dir = "broker-${id}"`,
        'protocols = ["@robustmq/protocol-mqtt"]',
        ...common,
        ...cluster,
        '[storage]',
        'engine = "@robustmq/journal/remote"',
        `address = "127.0.0.1:${rpcPort}"`,
        '[rpc]',
        'port = 0',
        '[mqtt]',
        'port = 0',
      ]);
    const start = async (config: string): Promise<ServerProcess> => {
      const server = await startServer({ args: ['--config', config], cwd: dir.path });
      cleanups.push(() => server.stop('SIGKILL'));
      return server;
    };
    await start(metaConfig);
    const first = await start(brokerConfig(2));
    const second = await start(brokerConfig(3));

    const received: string[] = [];
    const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${second.port('mqtt/tcp')}`, {
      clientId: 'joined-late',
      clean: false,
      reconnectPeriod: 0,
    });
    cleanups.push(() => subscriber.endAsync(true));
    subscriber.on('message', (_topic, payload) => received.push(payload.toString()));
    await subscriber.subscribeAsync('orders/#', { qos: 1 });

    const publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.port('mqtt/tcp')}`, {
      clientId: 'publisher',
      reconnectPeriod: 0,
    });
    cleanups.push(() => publisher.endAsync(true));
    const acknowledged: string[] = [];
    for (let i = 0; i < 10; i++) {
      await publisher.publishAsync('orders/new', `order-${i}`, { qos: 1 });
      acknowledged.push(`order-${i}`);
    }
    const deadline = Date.now() + 5000;
    while (received.length < acknowledged.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(received).toEqual(acknowledged);
  }, 60_000);
});
