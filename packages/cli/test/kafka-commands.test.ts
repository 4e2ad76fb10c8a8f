import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/cli.js';
import { startServer, type TestServer } from './helpers/server.js';

interface Record_ {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  headers: Record<string, string>;
  value: string;
}

interface Group {
  id: string;
  offsets: Array<{
    topic: string;
    partition: number;
    committedOffset: number;
    endOffset: number;
    lag: number;
  }>;
}

const lines = (text: string) => text.split('\n').filter(Boolean);

describe('robustmq kafka against a real server with the Kafka plugin', () => {
  let server: TestServer;
  let brokers = '';
  const cli = (args: string[], input?: string) => run(args, { env: server.env, input });

  beforeAll(async () => {
    server = await startServer({ protocols: ['@robustmq/protocol-kafka'] });
    brokers = `127.0.0.1:${server.ports.get('kafka/tcp')}`;
    expect((await cli(['topic', 'create', 'orders', '--partitions', '1'])).code).toBe(0);
  });

  afterAll(async () => {
    await server.stop();
  });

  it('produce sends values with key and headers; consume prints them as JSON lines and commits', async () => {
    const produced = await cli([
      'kafka',
      'produce',
      '-b',
      brokers,
      '-t',
      'orders',
      '-k',
      'customer-1',
      '-H',
      'source=cli',
      'o1',
      'o2',
    ]);
    expect(produced).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const fromStdin = await cli(['kafka', 'produce', '-b', brokers, '-t', 'orders'], 'o3\no4\n');
    expect(fromStdin.code).toBe(0);

    const consumed = await cli([
      'kafka',
      'consume',
      '-b',
      brokers,
      '-t',
      'orders',
      '-g',
      'billing',
      '--from-beginning',
      '-n',
      '3',
      '-o',
      'json',
    ]);
    expect(consumed.code).toBe(0);
    const records = lines(consumed.stdout).map((l) => JSON.parse(l) as Record_);
    expect(records.map((r) => [r.offset, r.key, r.headers, r.value])).toEqual([
      [0, 'customer-1', { source: 'cli' }, 'o1'],
      [1, 'customer-1', { source: 'cli' }, 'o2'],
      [2, null, {}, 'o3'],
    ]);
    expect(consumed.stderr).toMatch(/^consumed 3 messages in \d+\.\d+s \(\d+(\.\d)? msg\/s\)$/m);
  });

  it('groups: list, describe with the lag per partition, reset-offsets, delete', async () => {
    const list = await cli(['kafka', 'groups', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^billing +Empty /m);

    const described = await cli(['kafka', 'groups', 'describe', 'billing']);
    expect(described.code).toBe(0);
    expect(described.stdout).toMatch(/^TOPIC +PARTITION +COMMITTED OFFSET +END OFFSET +LAG/m);
    expect(described.stdout).toMatch(/^orders +0 +3 +4 +1 /m);
    expect(described.stdout).toMatch(/^total lag: 1$/m);

    const reset = await cli([
      'kafka',
      'groups',
      'reset-offsets',
      'billing',
      '-t',
      'orders',
      '--to',
      'earliest',
    ]);
    expect(reset.code).toBe(0);
    const group = JSON.parse(
      (await cli(['kafka', 'groups', 'describe', 'billing', '-o', 'json'])).stdout,
    ) as Group;
    expect(group.offsets).toEqual([
      expect.objectContaining({ topic: 'orders', partition: 0, committedOffset: 0, lag: 4 }),
    ]);

    const again = await cli(['kafka', 'consume', '-b', brokers, '-t', 'orders', '-g', 'billing', '-n', '4']);
    expect(again.code).toBe(0);
    expect(lines(again.stdout)).toEqual(['o1', 'o2', 'o3', 'o4']);

    expect(await cli(['kafka', 'groups', 'delete', 'billing'])).toMatchObject({
      code: 0,
      stdout: 'deleted billing\n',
    });
    expect((await cli(['kafka', 'groups', 'describe', 'billing'])).code).toBe(1);
  });

  it('produce --count ends with the rate; consume --progress shows its line, --timeout exits 1 when short', async () => {
    const produced = await cli(['kafka', 'produce', '-b', brokers, '-t', 'load', '-n', '200', 'x']);
    expect(produced.code).toBe(0);
    expect(produced.stderr).toMatch(/^produced 200 messages in \d+\.\d+s \(\d+(\.\d)? msg\/s\)\n$/);
    const consumed = await cli([
      'kafka',
      'consume',
      '-b',
      brokers,
      '-t',
      'load',
      '--from-beginning',
      '-n',
      '201',
      '-W',
      '15',
      '--progress',
    ]);
    expect(consumed.code).toBe(1);
    expect(lines(consumed.stdout)).toHaveLength(200);
    expect(consumed.stderr).toMatch(/^robustmq: consumed 200 of 201 messages within 15s$/m);
    // Without a terminal, --progress writes its line once a second.
    expect(consumed.stderr).toMatch(/^consumed 200\/201 messages, \d+(\.\d)? msg\/s$/m);
  });

  it('without -b, reaches the Kafka listener the node reports (the test node is not on 9092)', async () => {
    expect(await cli(['kafka', 'produce', '-t', 'found', 'f1'])).toMatchObject({ code: 0, stderr: '' });
    const consumed = await cli(['kafka', 'consume', '-t', 'found', '--from-beginning', '-n', '1']);
    expect(consumed.code).toBe(0);
    expect(lines(consumed.stdout)).toEqual(['f1']);
  });

  it('exits 3 when the brokers cannot be reached', async () => {
    const result = await cli(['kafka', 'produce', '-b', '127.0.0.1:1', '-t', 'orders', 'x']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^robustmq: cannot reach 127\.0\.0\.1:1: /);
  });
});

describe('robustmq kafka --sasl against a server that requires SASL', () => {
  let server: TestServer;
  let brokers = '';

  beforeAll(async () => {
    server = await startServer({
      protocols: ['@robustmq/protocol-kafka'],
      protocolSettings: ['sasl_enabled = true'],
    });
    brokers = `127.0.0.1:${server.ports.get('kafka/tcp')}`;
    expect(
      (await run(['user', 'create', 'carol', '--new-password', 'carol-pw'], { env: server.env })).code,
    ).toBe(0);
  });

  afterAll(async () => {
    await server.stop();
  });

  it('authenticates with --user/--password by SCRAM, and exits 4 on a wrong password', async () => {
    const env = { ROBUSTMQ_API_URL: server.url };
    const produce = (mechanism: string, password: string) =>
      run(
        [
          'kafka',
          'produce',
          '-b',
          brokers,
          '-t',
          'secure',
          '--sasl',
          mechanism,
          '--user',
          'carol',
          '--password',
          password,
          'x',
        ],
        { env },
      );
    expect((await produce('scram-sha-256', 'carol-pw')).code).toBe(0);
    expect((await produce('scram-sha-512', 'carol-pw')).code).toBe(0);
    const wrong = await produce('scram-sha-256', 'nope');
    expect(wrong.code).toBe(4);
    const consumed = await run(
      [
        'kafka',
        'consume',
        '-b',
        brokers,
        '-t',
        'secure',
        '--from-beginning',
        '-n',
        '2',
        '--sasl',
        'scram-sha-512',
        '--user',
        'carol',
        '--password',
        'carol-pw',
      ],
      { env },
    );
    expect(consumed).toMatchObject({ code: 0, stdout: 'x\nx\n' });
    expect(
      (await run(['kafka', 'produce', '-b', brokers, '-t', 'secure', '--sasl', 'plain', 'x'], { env })).code,
    ).toBe(2);
  });
});
