import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

  it('answers /metrics within seconds', async () => {
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
    const meta = await start(metaConfig);
    const broker = await start(brokerConfig);
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
});
