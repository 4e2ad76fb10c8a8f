import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startServer, tempDir, type ServerProcess } from './helpers/server-process.js';

/**
 * A broker-only node whose meta group and journal (one `meta,journal` node) are gone: it keeps
 * answering its admin port, so the outage can be watched from its metrics.
 */
describe('a broker whose meta and journal node is down', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A `meta,journal` node and a broker-only node using it; `broker` adds lines to the broker's top level. */
  async function startPair(broker: string[] = []): Promise<{ meta: ServerProcess; broker: ServerProcess }> {
    const dir = tempDir('outage');
    cleanups.push(dir.remove);
    const rpcPort = await freePort();
    const common = ['bind = "127.0.0.1"', '[log]', 'format = "json"', '[http]', 'port = 0'];
    const cluster = ['[cluster]', `meta_nodes = ["1@127.0.0.1:${rpcPort}"]`, 'tick_ms = 20'];
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
    // The storage section keeps its default request timeout (30 s), as a user's would.
    const brokerConfig = write('broker.toml', [
      'node_id = 2',
      'roles = ["broker"]',
      'data_dir = "broker"',
      'protocols = ["@robustmq/protocol-mqtt"]',
      ...broker,
      ...common,
      ...cluster,
      '[storage]',
      'engine = "@robustmq/journal/remote"',
      `address = "127.0.0.1:${rpcPort}"`,
      '[mqtt]',
      'port = 0',
    ]);
    const start = async (config: string): Promise<ServerProcess> => {
      const server = await startServer({ args: ['--config', config], cwd: dir.path });
      cleanups.push(() => server.stop('SIGKILL'));
      return server;
    };
    return { meta: await start(metaConfig), broker: await start(brokerConfig) };
  }

  it('answers /metrics within seconds', async () => {
    const { meta, broker } = await startPair();
    const scrape = async () => {
      const started = Date.now();
      const response = await fetch(`${broker.httpUrl}/metrics`, { signal: AbortSignal.timeout(8000) });
      return { status: response.status, text: await response.text(), ms: Date.now() - started };
    };
    const before = await scrape();
    expect(before.status).toBe(200);
    expect(before.text).toMatch(
      /^robustmq_storage_shards\{engine="@robustmq\/journal\/remote",node="2"\} \d+$/m,
    );
    expect(before.text).toMatch(/^robustmq_meta_revision\{node="2"\} \d+$/m);

    await meta.stop('SIGKILL');
    // Prometheus gives up on a scrape after 10 s by default: every scrape must answer well before.
    for (let i = 0; i < 2; i++) {
      const during = await scrape();
      expect(during.status).toBe(200);
      expect(during.ms).toBeLessThan(5000);
      expect(during.text).toMatch(/^robustmq_process_resident_memory_bytes\{node="2"\} \d+$/m);
    }
  }, 30_000);

  it('stops on SIGTERM within its shutdown_timeout_ms, however many steps wait for the meta service', async () => {
    const { meta, broker } = await startPair(['shutdown_timeout_ms = 2000']);
    // A persistent session with a subscription: the MQTT broker saves what it has on the way out.
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port('mqtt/tcp')}`, {
      clientId: 'outage-session',
      clean: false,
      reconnectPeriod: 0,
    });
    await client.subscribeAsync('outage/#', { qos: 1 });
    await meta.stop('SIGKILL');
    const started = Date.now();
    const code = await broker.stop('SIGTERM');
    const took = Date.now() - started;
    client.end(true);
    expect(code).toBe(0);
    // Each step that waits for the meta service (the protocols stopping, leaving the cluster) used to
    // take up to its own timeout, one after the other: 10 s and more here.
    expect(took).toBeLessThan(2000 + 2500);
    expect(broker.logs.some((l) => l.msg === 'node stopped')).toBe(true);
  }, 30_000);
});
