import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/cli.js';
import { startServer, type TestServer } from './helpers/server.js';

describe('robustmq with awkward names against a real server', () => {
  let server: TestServer;
  const cli = (args: string[]) => run(args, { env: server.env });

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server.stop();
  });

  it('config get: a name of a JavaScript object property is no setting', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const table = await cli(['config', 'get', name]);
      expect(table, name).toMatchObject({ code: 1, stdout: '' });
      expect(table.stderr, name).toBe(`robustmq: no such setting: ${name}\n`);
      const json = await cli(['config', 'get', name, '-o', 'json']);
      expect(json, name).toMatchObject({ code: 1, stdout: '' });
    }
  });

  it('topic and user commands reach the longest names the server allows', async () => {
    const topic = 't'.repeat(249);
    expect(await cli(['topic', 'create', topic])).toMatchObject({ code: 0, stderr: '' });
    const described = await cli(['topic', 'describe', topic, '-o', 'json']);
    expect(described).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(described.stdout) as { name: string }).name).toBe(topic);
    expect(await cli(['topic', 'delete', topic])).toMatchObject({ code: 0, stderr: '' });

    const user = 'u'.repeat(128);
    expect(await cli(['user', 'create', user, '--new-password', 'pw'])).toMatchObject({ code: 0 });
    expect(await cli(['user', 'delete', user])).toMatchObject({ code: 0, stderr: '' });
  });
});
