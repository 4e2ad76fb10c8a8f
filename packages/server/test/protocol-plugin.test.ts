import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LineClient } from './helpers/line-client.js';
import { linesProject } from './helpers/lines-project.js';
import { runServer, startServer, type ServerProcess } from './helpers/server-process.js';

/**
 * A third-party protocol package, installed in the user's project and named in the config, is
 * loaded by package name, gets its port, and reaches the node through its BrokerContext.
 */
describe('a protocol package loaded by name from config', () => {
  let project: string;
  const cleanups: Array<() => unknown> = [];

  beforeEach(() => {
    const dir = linesProject();
    cleanups.push(dir.remove);
    project = dir.path;
    dir.writeConfig('robustmq.toml', [
      'bind = "127.0.0.1"',
      'protocols = ["robustmq-protocol-lines"]',
      '[http]',
      'port = 0',
      '[log]',
      'format = "json"',
      '[lines]',
      'port = 0',
      'max_line_bytes = 64',
    ]);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(): Promise<ServerProcess> {
    const server = await startServer({ args: ['--config', 'robustmq.toml'], cwd: project });
    cleanups.push(() => server.stop('SIGKILL'));
    return server;
  }

  async function client(server: ServerProcess): Promise<LineClient> {
    const c = await LineClient.connect(server.port('lines/tcp'));
    cleanups.push(() => c.close());
    return c;
  }

  it('receives connections on its port and routes messages through the BrokerContext', async () => {
    const server = await start();
    expect(existsSync(join(project, 'robustmq-data', 'LOCK'))).toBe(true);
    const ready = (await (await fetch(`${server.httpUrl}/health/ready`)).json()) as { listeners: unknown[] };
    expect(ready.listeners).toContainEqual(
      expect.objectContaining({ protocol: 'lines', name: 'tcp', transport: 'tcp' }),
    );

    const subscriber = await client(server);
    const publisher = await client(server);
    expect(await publisher.request('ECHO hello')).toBe('hello');
    // Configured on port 0, the protocol is told the port it got.
    expect(await publisher.request('PORTS')).toBe(`PORTS tcp:${server.port('lines/tcp')}`);
    expect(await subscriber.request('SUB sensors/+/temp')).toBe('OK');
    expect(await publisher.request('PUB sensors/kitchen/temp 21.5')).toBe('OK 1');
    expect(await subscriber.next()).toBe('MSG sensors/kitchen/temp 21.5');
    expect(await publisher.request('PUB sensors/kitchen/humidity 40')).toBe('OK 0');
  });

  it('stores through the node storage engine, and the data survives kill -9', async () => {
    const first = await start();
    const writer = await client(first);
    expect(await writer.request('STORE notes/0 first')).toBe('OK 0');
    expect(await writer.request('STORE notes/0 second')).toBe('OK 1');
    await first.stop('SIGKILL');

    const second = await start();
    const reader = await client(second);
    expect(await reader.request('READ notes/0 1')).toBe('DATA second');
    expect(await reader.request('READ notes/0 0')).toBe('DATA first');
    expect(await reader.request('STORE notes/0 third')).toBe('OK 2');
  });

  it('refuses bad input without harming other clients, and counts it', async () => {
    const server = await start();
    const good = await client(server);
    const bad = await client(server);
    expect(await bad.request('FROB x')).toBe('ERR unknown command "FROB"');
    expect(await bad.request('SUB a/#/b')).toMatch(/^ERR invalid topic filter/);
    bad.socket.write(`ECHO ${'x'.repeat(200)}\n`);
    expect(await bad.next()).toBe('ERR line too long');
    await bad.closed;
    expect(await good.request('ECHO still here')).toBe('still here');
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/robustmq_lines_bad_input_total\{reason="unknown_command",node="1"\} 1/);
    expect(metrics).toMatch(/robustmq_lines_bad_input_total\{reason="too_long",node="1"\} 1/);
    expect(metrics).toMatch(
      /robustmq_connections_accepted_total\{protocol="lines",listener="tcp",node="1"\} 2/,
    );
    expect(server.logs.some((l) => l.msg === 'bad input' && l.protocol === 'lines')).toBe(true);
  });

  it('lets the protocol say goodbye on shutdown, then exits 0', async () => {
    const server = await start();
    const c = await client(server);
    expect(await c.request('ECHO hi')).toBe('hi');
    const code = server.stop('SIGINT');
    expect(await c.next()).toBe('BYE');
    expect(await code).toBe(0);
  });

  it('names an invalid setting of the protocol section', async () => {
    writeFileSync(
      join(project, 'bad.toml'),
      'protocols = ["robustmq-protocol-lines"]\n[lines]\nport = "x"\n',
    );
    const result = await runServer({ args: ['--config', 'bad.toml'], cwd: project });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('robustmq-server: invalid setting lines.port: must be an integer');
  });
});
