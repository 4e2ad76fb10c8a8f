import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, run } from './helpers/cli.js';
import { startServer, type TestServer } from './helpers/server.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

describe('robustmq status, exit codes and help', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server.stop();
  });

  it('prints the status of a ready node as a table and exits 0', async () => {
    const result = await run(['status', '--server', server.url]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^status: +ready$/m);
    expect(result.stdout).toMatch(new RegExp(`^version: +${server.version.replaceAll('.', '\\.')}$`, 'm'));
    expect(result.stdout).toMatch(/^PROTOCOL +LISTENER +TRANSPORT +ADDRESS$/m);
    expect(result.stdout).toMatch(/^admin +http +http +127\.0\.0\.1:\d+$/m);
    expect(result.stdout).toMatch(/^mqtt +tcp +tcp +127\.0\.0\.1:\d+$/m);
  });

  it('prints JSON with --output json, and takes the address from ROBUSTMQ_API_URL', async () => {
    const result = await run(['status', '-o', 'json'], { env: { ROBUSTMQ_API_URL: server.url } });
    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout) as { ready: boolean; version: string };
    expect(body).toMatchObject({ ready: true, version: server.version });
  });

  it('ends quietly when its reader closes the pipe early (robustmq status | head -1)', async () => {
    const child = spawn(process.execPath, [CLI, 'status', '--server', server.url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('exits 3 with one line when the server cannot be reached', async () => {
    const port = await closedPort();
    for (const args of [['status'], ['topic', 'list'], ['cluster']]) {
      const result = await run([...args, '--server', `http://127.0.0.1:${port}`]);
      expect(result.code).toBe(3);
      expect(result.stderr.trim()).toBe(`robustmq: cannot reach http://127.0.0.1:${port}: ECONNREFUSED`);
    }
  });

  it('exits 4 when the admin API wants credentials and gets none, or wrong ones', async () => {
    const none = await run(['topic', 'list', '--server', server.url]);
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/^robustmq: UNAUTHENTICATED: .*pass --user and --password/);
    const wrong = await run([
      'topic',
      'list',
      '--server',
      server.url,
      '--user',
      'admin',
      '--password',
      'nope',
    ]);
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(/^robustmq: UNAUTHENTICATED: /);
  });

  it('exits 2 on a bad command line, 0 on --help and --version', async () => {
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['status', '--output', 'yaml'])).code).toBe(2);
    expect((await run(['topic', 'create'])).code).toBe(2);
    expect((await run(['topic', 'create', 't', '--partitions', 'many'])).code).toBe(2);
    expect((await run(['mqtt', 'pub', '-t', 'a', '--qos', '3', 'x'])).code).toBe(2);
    const alter = await run(['topic', 'alter', 't', '--server', server.url]);
    expect(alter.code).toBe(2);
    expect(alter.stderr).toMatch(/nothing to change/);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const command of [
      'status',
      'cluster',
      'topic',
      'mqtt',
      'kafka',
      'amqp',
      'user',
      'acl',
      'config',
      'completion',
    ]) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
    expect(help.stdout).toMatch(/^Exit codes:$/m);
    const version = await run(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(VERSION);
  });
});

describe('robustmq against an admin API over HTTPS', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ https: true });
  }, 60_000);

  afterAll(() => server?.stop());

  it('works once told to trust the CA that signed the server certificate', async () => {
    expect(server.url).toMatch(/^https:/);
    const status = await run(['status'], { env: server.env });
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    const users = await run(['user', 'list', '--output', 'json'], { env: server.env });
    expect(users.code).toBe(0);
    expect(users.stdout).toContain('"admin"');
  });

  it('exits 3 saying how to trust the CA when it does not', async () => {
    const { NODE_EXTRA_CA_CERTS: _trusted, ...untrusted } = server.env;
    const status = await run(['status'], { env: untrusted });
    expect(status.code).toBe(3);
    expect(status.stderr.trim()).toBe(
      `robustmq: cannot reach ${server.url}: UNABLE_TO_VERIFY_LEAF_SIGNATURE (if your own CA signed its certificate, trust it: NODE_EXTRA_CA_CERTS=<ca.pem>)`,
    );
  });

  it('is not answered over plain HTTP', async () => {
    const plain = await run(['status', '--server', server.url.replace('https:', 'http:')], {
      env: server.env,
    });
    expect(plain.code).toBe(3);
  });
});
