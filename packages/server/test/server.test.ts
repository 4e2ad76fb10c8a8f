import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { VERSION } from '../src/version.js';
import {
  isolatedArgs,
  runServer,
  startServer,
  tempDir,
  type ServerProcess,
} from './helpers/server-process.js';

/** Every default protocol on a free port. */
const FREE_PROTOCOL_PORTS = ['--mqtt-port', '0', '--kafka-port', '0', '--amqp-port', '0'];

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function dataDir(): string {
  const dir = tempDir('server');
  cleanups.push(dir.remove);
  return join(dir.path, 'data');
}

async function started(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const server = await startServer({ args, env });
  cleanups.push(() => server.stop('SIGKILL'));
  return server;
}

describe('robustmq-server', () => {
  it('prints its version and help', async () => {
    const version = await runServer({ args: ['--version'] });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(VERSION);
    const help = await runServer({ args: ['start', '--help'] });
    expect(help.code).toBe(0);
    for (const flag of [
      '--config',
      '--data-dir',
      '--http-port',
      '--mqtt-port',
      '--kafka-port',
      '--amqp-port',
      '--node-id',
      '--roles',
    ]) {
      expect(help.stdout).toContain(flag);
    }
  });

  it('starts standalone, answers health, and stops cleanly on SIGTERM and SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const dir = dataDir();
      const server = await started(isolatedArgs(dir));
      const live = await fetch(`${server.httpUrl}/health/live`);
      expect(live.status).toBe(200);
      const ready = await fetch(`${server.httpUrl}/health/ready`);
      expect(ready.status).toBe(200);
      const body = (await ready.json()) as Record<string, unknown>;
      expect(body).toMatchObject({
        ready: true,
        status: 'ready',
        version: VERSION,
        nodeId: 1,
        roles: ['meta', 'broker', 'journal'],
      });
      expect(body.clusterId).toMatch(/^[0-9a-f-]{36}$/);
      expect(existsSync(join(dir, 'LOCK'))).toBe(true);
      expect(await server.stop(signal)).toBe(0);
      expect(existsSync(join(dir, 'LOCK'))).toBe(false);
      expect(server.logs.map((l) => l.msg)).toContain('node stopped');
    }
  });

  it('keeps its cluster id across restarts, including after kill -9', async () => {
    const dir = dataDir();
    const first = await started(isolatedArgs(dir));
    const id = ((await (await fetch(`${first.httpUrl}/health/ready`)).json()) as { clusterId: string })
      .clusterId;
    await first.stop('SIGKILL');
    const second = await started(isolatedArgs(dir));
    const again = ((await (await fetch(`${second.httpUrl}/health/ready`)).json()) as { clusterId: string })
      .clusterId;
    expect(again).toBe(id);
  });

  it('serves Prometheus metrics', async () => {
    const server = await started(isolatedArgs(dataDir()));
    const response = await fetch(`${server.httpUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    expect(await response.text()).toMatch(/robustmq_process_resident_memory_bytes\{node="1"\} \d+/);
  });

  it('says in one line that a port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
    const port = (blocker.address() as { port: number }).port;
    const args = [...isolatedArgs(dataDir()), '--http-port', String(port)];
    const result = await runServer({ args });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      `robustmq-server: port ${port} (admin http) is already in use on 127.0.0.1`,
    );
  });

  it('refuses a data directory another live node holds', async () => {
    const dir = dataDir();
    await started(isolatedArgs(dir));
    const second = await runServer({ args: isolatedArgs(dir) });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/data directory .* is in use by process \d+/);
  });

  it.runIf(process.platform === 'linux')(
    'takes over a lock whose holder was killed and not yet reaped',
    async () => {
      // The inner shell exits once its parent has become `sleep`, which never reaps it (exiting at
      // once, it could be reaped by the shell before the exec).
      const parent = spawn('sh', ['-c', 'sh -c "sleep 0.3; exit 0" & echo $!; exec sleep 30'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      cleanups.push(() => parent.kill('SIGKILL'));
      const zombie = Number(
        await new Promise<string>((resolve) =>
          parent.stdout.once('data', (d: Buffer) => resolve(d.toString())),
        ),
      );
      await vi.waitFor(() => expect(readFileSync(`/proc/${zombie}/stat`, 'utf8')).toMatch(/\) Z /), {
        timeout: 5000,
      });
      const dir = dataDir();
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'LOCK'), `${zombie}\n`);
      const server = await started(isolatedArgs(dir));
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${server.child.pid}\n`);
    },
  );

  it('stops at an unknown or invalid setting and names it', async () => {
    const dir = tempDir('config');
    cleanups.push(dir.remove);
    const file = join(dir.path, 'node.toml');
    writeFileSync(file, '[http]\nprot = 1\n');
    const unknown = await runServer({ args: ['--config', file, '--data-dir', join(dir.path, 'd')] });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe('robustmq-server: http.prot: unknown setting');

    const invalid = await runServer({
      args: ['--data-dir', join(dir.path, 'd')],
      env: { ROBUSTMQ_HTTP_PORT: '99999' },
    });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/^robustmq-server: http\.port: /);

    const badFlag = await runServer({ args: ['--http-port', 'eighty'] });
    expect(badFlag.code).not.toBe(0);
    expect(badFlag.stderr).toContain("option '--http-port <port>' argument 'eighty' is invalid");

    const stray = await runServer({
      args: [
        '--data-dir',
        join(dir.path, 'd'),
        '--protocols',
        '@robustmq/protocol-mqtt',
        '--kafka-port',
        '9092',
      ],
    });
    expect(stray.code).toBe(1);
    expect(stray.stderr).toContain(
      'kafka: unknown setting (no loaded protocol is named kafka; loaded: mqtt)',
    );

    const roles = await runServer({ args: ['--roles', 'broker', '--data-dir', join(dir.path, 'd')] });
    expect(roles.code).toBe(1);
    expect(roles.stderr).toContain('roles = [broker]');

    const missing = await runServer({
      args: ['--protocols', 'robustmq-protocol-nowhere', '--data-dir', join(dir.path, 'd')],
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(
      'robustmq-server: protocol package "robustmq-protocol-nowhere" is not installed (try: npm install robustmq-protocol-nowhere)',
    );
    expect(existsSync(join(dir.path, 'd'))).toBe(false);
  });

  it('takes settings from the environment, and flags over the environment', async () => {
    const dir = dataDir();
    const server = await started(
      ['--bind', '127.0.0.1', ...FREE_PROTOCOL_PORTS, '--set', 'log.format="json"'],
      {
        ROBUSTMQ_DATA_DIR: dir,
        ROBUSTMQ_HTTP_PORT: '0',
        ROBUSTMQ_NODE_ID: '4',
      },
    );
    const body = (await (await fetch(`${server.httpUrl}/health/ready`)).json()) as { nodeId: number };
    expect(body.nodeId).toBe(4);
    expect(existsSync(join(dir, 'LOCK'))).toBe(true);
    await server.stop();
    const flagged = await started(
      ['--bind', '127.0.0.1', ...FREE_PROTOCOL_PORTS, '--set', 'log.format="json"', '--node-id', '5'],
      {
        ROBUSTMQ_DATA_DIR: dir,
        ROBUSTMQ_HTTP_PORT: '0',
        ROBUSTMQ_NODE_ID: '4',
      },
    );
    expect(
      ((await (await fetch(`${flagged.httpUrl}/health/ready`)).json()) as { nodeId: number }).nodeId,
    ).toBe(5);
  });
});
