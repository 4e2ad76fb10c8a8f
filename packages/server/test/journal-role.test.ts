import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LineClient } from './helpers/line-client.js';
import { linesProject } from './helpers/lines-project.js';
import { runServer, startServer, type ServerProcess } from './helpers/server-process.js';

/**
 * Brokers keep no state: a broker node (roles meta, broker) stores through a journal node (role
 * journal) over the internal RPC port, and either can be killed and restarted without losing
 * what was acknowledged.
 */
describe('a broker node storing on a journal node', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function project() {
    const p = linesProject();
    cleanups.push(p.remove);
    p.writeConfig('journal.toml', [
      'roles = ["journal"]',
      'bind = "127.0.0.1"',
      'data_dir = "journal-data"',
      '[http]',
      'port = 0',
      '[rpc]',
      'port = 0',
      '[log]',
      'format = "json"',
    ]);
    return p;
  }

  function writeBrokerConfig(p: ReturnType<typeof project>, journalPort: number) {
    p.writeConfig('broker.toml', [
      'roles = ["meta", "broker"]',
      'bind = "127.0.0.1"',
      'data_dir = "broker-data"',
      'protocols = ["robustmq-protocol-lines"]',
      '[http]',
      'port = 0',
      '[log]',
      'format = "json"',
      '[storage]',
      'engine = "@robustmq/journal/remote"',
      `address = "127.0.0.1:${journalPort}"`,
      'request_timeout_ms = 2000',
      '[lines]',
      'port = 0',
    ]);
  }

  async function start(cwd: string, config: string, extra: string[] = []): Promise<ServerProcess> {
    const server = await startServer({ args: ['--config', config, ...extra], cwd });
    cleanups.push(() => server.stop('SIGKILL'));
    return server;
  }

  async function client(server: ServerProcess): Promise<LineClient> {
    const c = await LineClient.connect(server.port('lines/tcp'));
    cleanups.push(() => c.close());
    return c;
  }

  it('serves storage over RPC, survives a broker kill -9, and recovers from a journal restart', async () => {
    const p = project();
    const journal = await start(p.path, 'journal.toml');
    const journalPort = journal.port('journal/rpc');
    const ready = (await (await fetch(`${journal.httpUrl}/health/ready`)).json()) as {
      roles: string[];
      listeners: unknown[];
    };
    expect(ready.roles).toEqual(['journal']);
    expect(ready.listeners).toContainEqual(
      expect.objectContaining({ protocol: 'journal', name: 'rpc', port: journalPort }),
    );

    writeBrokerConfig(p, journalPort);
    const broker = await start(p.path, 'broker.toml');
    const c1 = await client(broker);
    expect(await c1.request('STORE orders/0 first')).toBe('OK 0');
    expect(await c1.request('STORE orders/0 second')).toBe('OK 1');

    // The broker holds no data: a new broker process reads what the journal node kept.
    await broker.stop('SIGKILL');
    const broker2 = await start(p.path, 'broker.toml');
    const c2 = await client(broker2);
    expect(await c2.request('READ orders/0 0')).toBe('DATA first');
    expect(await c2.request('READ orders/0 1')).toBe('DATA second');

    // The journal node dies: writes fail, the broker stays up; it comes back on its port and
    // writes go through again with nothing acknowledged lost.
    await journal.stop('SIGKILL');
    expect(await c2.request('STORE orders/0 lost')).toMatch(/^ERR /);
    const journal2 = await start(p.path, 'journal.toml', ['--set', `rpc.port=${journalPort}`]);
    expect(journal2.port('journal/rpc')).toBe(journalPort);
    let reply = '';
    for (let attempt = 0; attempt < 50 && !reply.startsWith('OK'); attempt++) {
      reply = await c2.request('STORE orders/0 third');
      if (!reply.startsWith('OK')) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(reply).toBe('OK 2');
    expect(await c2.request('READ orders/0 0')).toBe('DATA first');
    expect(await c2.request('READ orders/0 2')).toBe('DATA third');
  }, 30_000); // four process starts in a row: slow on a loaded machine

  it('refuses role sets it cannot run, saying what to set', async () => {
    const p = project();
    const brokerWithoutJournal = await runServer({
      args: ['--roles', 'meta,broker', '--data-dir', join(p.path, 'd'), '--http-port', '0'],
      cwd: p.path,
    });
    expect(brokerWithoutJournal.code).toBe(1);
    expect(brokerWithoutJournal.stderr).toContain('set storage.engine = "@robustmq/journal/remote"');

    const journalWithProtocols = await runServer({
      args: ['--roles', 'journal', '--protocols', 'robustmq-protocol-lines', '--data-dir', join(p.path, 'd')],
      cwd: p.path,
    });
    expect(journalWithProtocols.code).toBe(1);
    expect(journalWithProtocols.stderr).toContain('runs no protocols');

    const unreachable = await runServer({
      args: [
        '--roles',
        'meta,broker',
        '--data-dir',
        join(p.path, 'd'),
        '--http-port',
        '0',
        '--set',
        'storage.engine="@robustmq/journal/remote"',
        '--set',
        'storage.address="127.0.0.1:1"',
        '--set',
        'storage.connect_timeout_ms=300',
      ],
      cwd: p.path,
    });
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.stderr).toContain('127.0.0.1:1');
  });
});
