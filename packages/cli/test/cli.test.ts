import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const SERVER_BIN = join(
  dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json')),
  'dist/bin.js',
);
const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ROBUSTMQ_API_URL: '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

describe('robustmq (CLI)', () => {
  let server: ReturnType<typeof spawn>;
  let url = '';
  let serverVersion = '';
  const dir = mkdtempSync(join(tmpdir(), 'robustmq-cli-'));

  beforeAll(async () => {
    server = spawn(
      process.execPath,
      [
        SERVER_BIN,
        '--bind',
        '127.0.0.1',
        '--http-port',
        '0',
        '--mqtt-port',
        '0',
        '--data-dir',
        join(dir, 'data'),
        '--set',
        'log.format="json"',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const ready = await new Promise<{ version: string; listeners: string[] }>((resolve, reject) => {
      let buffered = '';
      server.stdout!.on('data', (d: Buffer) => {
        buffered += d.toString();
        for (const line of buffered.split('\n')) {
          if (line.includes('"node ready"'))
            resolve(JSON.parse(line) as { version: string; listeners: string[] });
        }
      });
      server.on('exit', (code) => reject(new Error(`server exited ${code}`)));
    });
    serverVersion = ready.version;
    url = `http://127.0.0.1:${ready.listeners[0]!.split(':').pop()}`;
  });

  afterAll(async () => {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.on('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the status of a ready node as a table and exits 0', async () => {
    const result = await run(['status', '--server', url]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^status: +ready$/m);
    expect(result.stdout).toMatch(new RegExp(`^version: +${serverVersion.replaceAll('.', '\\.')}$`, 'm'));
    expect(result.stdout).toMatch(/^PROTOCOL +LISTENER +TRANSPORT +ADDRESS$/m);
    expect(result.stdout).toMatch(/^admin +http +http +127\.0\.0\.1:\d+$/m);
  });

  it('prints JSON with --output json, and takes the address from ROBUSTMQ_API_URL', async () => {
    const result = await run(['status', '-o', 'json'], { ROBUSTMQ_API_URL: url });
    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout) as { ready: boolean; version: string };
    expect(body).toMatchObject({ ready: true, version: serverVersion });
  });

  it('ends quietly when its reader closes the pipe early (robustmq status | head -1)', async () => {
    const child = spawn(process.execPath, [CLI, 'status', '--server', url], {
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
    const result = await run(['status', '--server', `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(3);
    expect(result.stderr.trim()).toBe(`robustmq: cannot reach http://127.0.0.1:${port}: ECONNREFUSED`);
  });

  it('exits 2 on a bad command line, 0 on --help and --version', async () => {
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['status', '--output', 'yaml'])).code).toBe(2);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('status');
    const version = await run(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(VERSION);
  });
});
