import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { denyRule, run, start } from './helpers/cli.js';
import { startServer, type TestServer } from './helpers/server.js';

const lines = (text: string) => text.split('\n').filter(Boolean);

describe('robustmq amqp against a real server with the AMQP plugin', () => {
  let server: TestServer;
  let url = '';
  // The admin credentials stay for the admin API; the AMQP connections go anonymous.
  const cli = (args: string[], input?: string) => run(args, { env: server.env, input });
  const amqp = (args: string[], input?: string) =>
    run(args, { env: { ROBUSTMQ_API_URL: server.url }, input });

  beforeAll(async () => {
    server = await startServer({ protocols: ['@robustmq/protocol-amqp'] });
    url = `amqp://127.0.0.1:${server.ports.get('amqp/tcp')}`;
  });

  afterAll(async () => {
    await server.stop();
  });

  it('send puts messages on a queue (unsettled: each accepted); receive prints them as JSON lines', async () => {
    expect(await amqp(['amqp', 'send', '-u', url, '-a', 'jobs', 'j1', 'j2'])).toMatchObject({
      code: 0,
      stderr: '',
    });
    expect((await amqp(['amqp', 'send', '-u', url, '-a', 'jobs'], 'j3\n')).code).toBe(0);

    const queues = await cli(['amqp', 'queues', '-o', 'json']);
    expect(queues.code).toBe(0);
    expect((JSON.parse(queues.stdout) as { items: Array<{ id: string }> }).items).toContainEqual(
      expect.objectContaining({ id: 'jobs' }),
    );

    const received = await amqp(['amqp', 'receive', '-u', url, '-a', 'jobs', '-n', '3', '-o', 'json']);
    expect(received.code).toBe(0);
    expect(lines(received.stdout).map((l) => (JSON.parse(l) as { body: string }).body)).toEqual([
      'j1',
      'j2',
      'j3',
    ]);
    expect(received.stderr).toMatch(/^received 3 messages in \d+\.\d+s \(\d+(\.\d)? msg\/s\)$/m);
  });

  it('without -u, reaches the AMQP listener the node reports (the test node is not on 5672)', async () => {
    expect(await amqp(['amqp', 'send', '-a', 'found', 'f1'])).toMatchObject({ code: 0, stderr: '' });
    const received = await amqp(['amqp', 'receive', '-a', 'found', '-n', '1']);
    expect(received.code).toBe(0);
    expect(lines(received.stdout)).toEqual(['f1']);
  });

  it('settled mode sends and receives at most once; --count ends with the rate', async () => {
    const receiver = start(
      ['amqp', 'receive', '-u', url, '-a', 'fast', '--settle-mode', 'settled', '-n', '300', '--progress'],
      {
        env: { ROBUSTMQ_API_URL: server.url },
      },
    );
    await receiver.waitForStderr(/^receiving from fast$/m);
    const sent = await amqp([
      'amqp',
      'send',
      '-u',
      url,
      '-a',
      'fast',
      '--settle-mode',
      'settled',
      '-n',
      '300',
      'm',
    ]);
    expect(sent.code).toBe(0);
    expect(sent.stderr).toMatch(/^sent 300 messages in \d+\.\d+s \(\d+(\.\d)? msg\/s\)\n$/);
    const result = await receiver.done();
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toHaveLength(300);
  });

  it('links shows the open links; receive --timeout exits 1 when nothing comes', async () => {
    const receiver = start(['amqp', 'receive', '-u', url, '-a', 'idle', '-W', '8', '--progress'], {
      env: { ROBUSTMQ_API_URL: server.url },
    });
    await receiver.waitForStderr(/^receiving from idle$/m);
    const links = await cli(['amqp', 'links', '-o', 'json']);
    expect(links.code).toBe(0);
    expect((JSON.parse(links.stdout) as { items: unknown[] }).items.length).toBeGreaterThan(0);
    const result = await receiver.done();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^robustmq: received 0 messages within 8s$/m);
  });

  it('exits 3 when the broker cannot be reached', async () => {
    const result = await amqp(['amqp', 'send', '-u', 'amqp://127.0.0.1:1', '-a', 'jobs', 'x']);
    expect(result.code).toBe(3);
    expect(result.stderr).toBe('robustmq: cannot reach amqp://127.0.0.1:1: ECONNREFUSED\n');
  });

  it('authenticates with --user/--password (SASL PLAIN), and exits 4 on a wrong password', async () => {
    const asAdmin = await cli(['amqp', 'send', '-u', url, '-a', 'secure', 'x']);
    expect(asAdmin).toMatchObject({ code: 0, stderr: '' });
    const wrong = await amqp([
      'amqp',
      'send',
      '-u',
      url,
      '-a',
      'secure',
      '--user',
      'admin',
      '--password',
      'nope',
      'x',
    ]);
    expect(wrong.code).toBe(4);
  });

  it('exits 4 naming the refusal when an access rule refuses the address (the link is refused, not the connection)', async () => {
    expect((await cli(['user', 'create', 'frank', '--new-password', 'frank-pw'])).code).toBe(0);
    for (const action of ['publish', 'subscribe']) {
      const rule = await cli(denyRule('frank', action, 'vault'));
      expect(rule.code).toBe(0);
    }
    const asFrank = ['--user', 'frank', '--password', 'frank-pw'];
    const send = await amqp(['amqp', 'send', '-u', url, '-a', 'vault', 'x', ...asFrank]);
    const receive = await amqp(['amqp', 'receive', '-u', url, '-a', 'vault', '-n', '1', ...asFrank]);
    for (const refused of [send, receive]) {
      expect(refused.code).toBe(4);
      expect(refused.stderr).toMatch(/^robustmq: amqp:\/\/127\.0\.0\.1:\d+: not allowed to /m);
      expect(refused.stderr).not.toContain('closed the connection');
    }
  });
});
