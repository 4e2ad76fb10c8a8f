import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { denyRule, run, start } from './helpers/cli.js';
import { startServer, type TestServer } from './helpers/server.js';

interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

const lines = (text: string) => text.split('\n').filter(Boolean);

describe('robustmq mqtt against a real server', () => {
  let server: TestServer;
  let broker = '';
  const cli = (args: string[], input?: string) => run(args, { env: server.env, input });
  const sub = (args: string[]) =>
    start(['mqtt', 'sub', '-b', broker, '--progress', ...args], { env: server.env });

  beforeAll(async () => {
    server = await startServer();
    broker = `mqtt://127.0.0.1:${server.ports.get('mqtt/tcp')}`;
  });

  afterAll(async () => {
    await server.stop();
  });

  it('pub sends the given messages and stdin lines; sub prints one JSON object per message (MQTT 5)', async () => {
    const receiver = sub(['-t', 'sensors/+/temp', '-q', '1', '-n', '4', '-o', 'json']);
    await receiver.waitForStderr(/^subscribed to sensors\/\+\/temp$/m);

    const fromArgs = await cli([
      'mqtt',
      'pub',
      '-b',
      broker,
      '-t',
      'sensors/a/temp',
      '-q',
      '1',
      '21.5',
      '22.0',
    ]);
    expect(fromArgs).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const fromStdin = await cli(
      ['mqtt', 'pub', '-b', broker, '-t', 'sensors/b/temp', '-q', '1'],
      '19.0\n19.5\n',
    );
    expect(fromStdin).toMatchObject({ code: 0, stderr: '' });

    const result = await receiver.done();
    expect(result.code).toBe(0);
    const messages = lines(result.stdout).map((l) => JSON.parse(l) as Received);
    expect(messages).toEqual([
      { topic: 'sensors/a/temp', payload: '21.5', qos: 1, retain: false },
      { topic: 'sensors/a/temp', payload: '22.0', qos: 1, retain: false },
      { topic: 'sensors/b/temp', payload: '19.0', qos: 1, retain: false },
      { topic: 'sensors/b/temp', payload: '19.5', qos: 1, retain: false },
    ]);
    expect(result.stderr).toMatch(/^received 4 messages in \d+\.\d+s \(\d+(\.\d)? msg\/s\)$/m);
  });

  it('pub --count repeats its message and ends with the rate; sub --count stops at the count (MQTT 3.1.1, QoS 2)', async () => {
    const receiver = sub(['-t', 'load/#', '-V', '3.1.1', '-q', '2', '-n', '500', '-v']);
    await receiver.waitForStderr(/^subscribed to load\/#$/m);
    const sent = await cli([
      'mqtt',
      'pub',
      '-b',
      broker,
      '-V',
      '3.1.1',
      '-q',
      '2',
      '-t',
      'load/x',
      '-n',
      '500',
      'ping',
    ]);
    expect(sent.code).toBe(0);
    expect(sent.stderr).toMatch(/^published 500 messages in \d+\.\d+s \(\d+(\.\d)? msg\/s\)\n$/);
    const result = await receiver.done();
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toHaveLength(500);
    expect(new Set(lines(result.stdout))).toEqual(new Set(['load/x ping']));
  });

  it('retained: pub -r keeps the message, retained list shows it, retained delete removes it', async () => {
    expect((await cli(['mqtt', 'pub', '-b', broker, '-t', 'status/door', '-r', 'open'])).code).toBe(0);
    const list = await cli(['mqtt', 'retained']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^status\/door +status\/door +4 /m);

    const got = await cli(['mqtt', 'sub', '-b', broker, '-t', 'status/door', '-n', '1', '-o', 'json']);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ topic: 'status/door', payload: 'open', retain: true });

    expect(await cli(['mqtt', 'retained', 'delete', 'status/door'])).toMatchObject({
      code: 0,
      stdout: 'deleted status/door\n',
    });
    const none = await cli(['mqtt', 'sub', '-b', broker, '-t', 'status/door', '-n', '1', '-W', '1']);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^robustmq: received 0 of 1 messages within 1s$/m);
    expect((await cli(['mqtt', 'retained', 'delete', 'status/door'])).code).toBe(1);
  });

  it('without -b, reaches the MQTT listener the node reports (the test node is not on 1883)', async () => {
    expect(await cli(['mqtt', 'pub', '-t', 'found/1', '-q', '1', '-r', 'f1'])).toMatchObject({
      code: 0,
      stderr: '',
    });
    const received = await cli(['mqtt', 'sub', '-t', 'found/+', '-n', '1', '-W', '10']);
    expect(received.code).toBe(0);
    expect(lines(received.stdout)).toEqual(['f1']);
  });

  it('clients, subscriptions and sessions: list, describe, kick, delete', async () => {
    const receiver = sub(['-t', 'kick/me', '-i', 'kick-me', '-V', '3.1.1', '--no-clean', '-q', '1']);
    await receiver.waitForStderr(/^subscribed to kick\/me$/m);

    const clients = await cli(['mqtt', 'clients', 'list']);
    expect(clients.stdout).toMatch(/^ID +CLIENT ID +/m);
    expect(clients.stdout).toMatch(/^kick-me +kick-me +3\.1\.1 +admin +127\.0\.0\.1 /m);
    const client = await cli(['mqtt', 'clients', 'describe', 'kick-me', '-o', 'json']);
    expect(JSON.parse(client.stdout)).toMatchObject({ id: 'kick-me', clientId: 'kick-me' });
    const subscriptions = await cli(['mqtt', 'subscriptions', '-o', 'json']);
    const items = (JSON.parse(subscriptions.stdout) as { items: Array<Record<string, unknown>> }).items;
    expect(items).toContainEqual(expect.objectContaining({ clientId: 'kick-me', topicFilter: 'kick/me' }));

    expect(await cli(['mqtt', 'clients', 'kick', 'kick-me'])).toMatchObject({
      code: 0,
      stdout: 'kicked kick-me\n',
    });
    const kicked = await receiver.done();
    expect(kicked.code).toBe(1);
    expect(kicked.stderr).toMatch(/^robustmq: the broker closed the connection$/m);

    const sessions = await cli(['mqtt', 'sessions']);
    expect(sessions.stdout).toMatch(/^kick-me +kick-me +false +true /m);
    expect(await cli(['mqtt', 'sessions', 'delete', 'kick-me'])).toMatchObject({
      code: 0,
      stdout: 'deleted kick-me\n',
    });
    const gone = await cli(['mqtt', 'sessions', 'describe', 'kick-me']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^robustmq: NOT_FOUND: /);
    expect((await cli(['mqtt', 'clients', 'kick', 'kick-me'])).code).toBe(1);
  });

  it('exits 3 when the broker cannot be reached and 4 when it refuses the credentials', async () => {
    const unreachable = await cli(['mqtt', 'pub', '-b', 'mqtt://127.0.0.1:1', '-t', 'a', 'x']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(/^robustmq: cannot reach mqtt:\/\/127\.0\.0\.1:1: ECONNREFUSED$/m);
    const refused = await run([
      'mqtt',
      'pub',
      '-b',
      broker,
      '-t',
      'a',
      '--user',
      'admin',
      '--password',
      'wrong',
      'x',
    ]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^robustmq: mqtt:\/\/127\.0\.0\.1:\d+ refused the connection: /m);
  });

  it('exits 4 when an access rule refuses a publish (MQTT 5 PUBACK reason)', async () => {
    expect((await cli(['user', 'create', 'dave', '--new-password', 'dave-pw'])).code).toBe(0);
    const rule = await cli(denyRule('dave', 'publish', 'secret/#'));
    expect(rule.code).toBe(0);
    const asDave = ['--user', 'dave', '--password', 'dave-pw'];
    const refused = await run(['mqtt', 'pub', '-b', broker, '-q', '1', '-t', 'secret/plans', 'x', ...asDave]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^robustmq: publish refused: /m);
    const allowed = await run(['mqtt', 'pub', '-b', broker, '-q', '1', '-t', 'public/plans', 'x', ...asDave]);
    expect(allowed.code).toBe(0);
  });

  it('exits 4 with one line when an access rule refuses a subscription (SUBACK 0x87, MQTT 3 0x80)', async () => {
    expect((await cli(['user', 'create', 'erin', '--new-password', 'erin-pw'])).code).toBe(0);
    const rule = await cli(denyRule('erin', 'subscribe', 'hidden/#'));
    expect(rule.code).toBe(0);
    const asErin = ['--user', 'erin', '--password', 'erin-pw'];
    for (const version of [[], ['-V', '3.1.1']]) {
      const refused = await run([
        'mqtt',
        'sub',
        '-b',
        broker,
        '-t',
        'hidden/x',
        '-n',
        '1',
        '-W',
        '3',
        ...asErin,
        ...version,
      ]);
      expect(refused.code).toBe(4);
      expect(refused.stderr).toMatch(/^robustmq: subscription refused: /m);
      expect(refused.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
