import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isolatedArgs, startServer, tempDir, type ServerProcess } from './helpers/server-process.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function started(dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const server = await startServer({ args: isolatedArgs(dataDir), env });
  cleanups.push(() => server.stop('SIGKILL'));
  return server;
}

async function login(server: ServerProcess, password: string): Promise<number> {
  const response = await fetch(`${server.httpUrl}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  return response.status;
}

describe('the bootstrap admin', () => {
  it('gets a random password printed once on the first start, never logged', async () => {
    const dir = tempDir('bootstrap');
    cleanups.push(dir.remove);
    const data = join(dir.path, 'data');
    const first = await started(data);
    const printed = /^bootstrap admin password: (\S+)$/m.exec(first.stderr());
    expect(printed).not.toBeNull();
    const password = printed![1]!;
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect(await login(first, password)).toBe(200);
    expect(first.logs.some((line) => line.msg === 'bootstrap admin user created')).toBe(true);
    expect(JSON.stringify(first.logs)).not.toContain(password);
    expect(await first.stop()).toBe(0);

    const second = await started(data);
    expect(second.stderr()).not.toContain('bootstrap admin password');
    expect(await login(second, password)).toBe(200);
  });

  it('takes its password from ROBUSTMQ_ADMIN_PASSWORD and prints none', async () => {
    const dir = tempDir('bootstrap');
    cleanups.push(dir.remove);
    const server = await started(join(dir.path, 'data'), { ROBUSTMQ_ADMIN_PASSWORD: 'chosen-by-operator' });
    expect(server.stderr()).not.toContain('bootstrap admin password');
    expect(await login(server, 'chosen-by-operator')).toBe(200);
    expect(await login(server, 'admin')).toBe(401);
  });
});
