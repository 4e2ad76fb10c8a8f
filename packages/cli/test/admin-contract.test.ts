import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/cli.js';
import { CONTRACT_TOKEN, startContractServer, type ContractServer } from './helpers/contract-server.js';

/**
 * Contract tests: the Kafka and AMQP admin commands against a stand-in server that answers as the
 * admin API contract says (/api/v1/{protocol}/{resource}), since the real server runs those
 * plugins only when they are installed. The same commands run against the real server in
 * kafka-commands.test.ts and amqp-commands.test.ts.
 */
describe('robustmq kafka groups and amqp queues|links (admin API contract)', () => {
  let api: ContractServer;
  const cli = (args: string[]) =>
    run(args, { env: { ROBUSTMQ_API_URL: api.url, ROBUSTMQ_USER: 'admin', ROBUSTMQ_PASSWORD: 'right' } });

  beforeAll(async () => {
    api = await startContractServer(
      {
        'kafka/groups': [
          {
            id: 'billing',
            state: 'Stable',
            members: [{ memberId: 'm-1', clientId: 'billing-app', host: '/127.0.0.1' }],
            offsets: [
              { topic: 'orders', partition: 0, committedOffset: 90, endOffset: 100, lag: 10 },
              { topic: 'orders', partition: 1, committedOffset: 50, endOffset: 55, lag: 5 },
            ],
          },
          { id: 'audit', state: 'Empty', members: [], offsets: [] },
          { id: 'search', state: 'Empty', members: [], offsets: [] },
        ],
        'amqp/queues': [{ id: 'jobs', messages: 3, unsettled: 1, consumers: 2 }],
        'amqp/links': [{ id: 'link-1', role: 'receiver', address: 'jobs', credit: 100 }],
      },
      ['kafka/groups'],
    );
  });

  afterAll(async () => {
    await api.close();
  });

  it('logs in once with the user and password, then sends the bearer token', async () => {
    api.received.length = 0;
    expect((await cli(['kafka', 'groups', 'list'])).code).toBe(0);
    expect(api.received.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /api/v1/login',
      'GET /api/v1/kafka/groups',
    ]);
    expect(api.received[0]!.body).toEqual({ username: 'admin', password: 'right' });
    expect(api.received[1]!.authorization).toBe(`Bearer ${CONTRACT_TOKEN}`);
  });

  it('lists groups a page at a time, or every page with --all', async () => {
    const page = await cli(['kafka', 'groups', 'list', '--limit', '2']);
    expect(page.code).toBe(0);
    expect(page.stdout).toBe(
      'ID       STATE   MEMBERS  OFFSETS\nbilling  Stable  1        2\naudit    Empty   -        -\n',
    );
    expect(page.stderr).toBe('more after "audit": add --after audit, or --all\n');

    api.received.length = 0;
    const all = await cli(['kafka', 'groups', '--limit', '2', '--all', '-o', 'json']);
    const body = JSON.parse(all.stdout) as { items: Array<{ id: string }>; next: null };
    expect(body.items.map((g) => g.id)).toEqual(['billing', 'audit', 'search']);
    expect(body.next).toBeNull();
    expect(api.received.filter((r) => r.path === '/api/v1/kafka/groups').map((r) => r.query)).toEqual([
      { limit: '2' },
      { limit: '2', after: 'audit' },
    ]);
  });

  it('describes a group with its members and the lag of each partition', async () => {
    const result = await cli(['kafka', 'groups', 'describe', 'billing']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^state: Stable$/m);
    expect(result.stdout).toMatch(/^MEMBERS\nMEMBER ID +CLIENT ID +HOST\nm-1 +billing-app +\/127\.0\.0\.1$/m);
    expect(result.stdout).toMatch(/^OFFSETS\nTOPIC +PARTITION +COMMITTED OFFSET +END OFFSET +LAG$/m);
    expect(result.stdout).toMatch(/^orders +0 +90 +100 +10$/m);
    expect(result.stdout).toMatch(/^orders +1 +50 +55 +5$/m);
    expect(result.stdout).toMatch(/^total lag: 15$/m);
    const missing = await cli(['kafka', 'groups', 'describe', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('robustmq: NOT_FOUND: groups: no nope\n');
  });

  it('resets offsets to earliest, latest or a time, sending the body the contract names', async () => {
    api.received.length = 0;
    const earliest = await cli([
      'kafka',
      'groups',
      'reset-offsets',
      'billing',
      '--topic',
      'orders',
      '--to',
      'earliest',
    ]);
    expect(earliest.code).toBe(0);
    expect(earliest.stdout).toMatch(/^reset offsets of group billing on orders to earliest$/m);
    const atTime = await cli([
      'kafka',
      'groups',
      'reset-offsets',
      'billing',
      '-t',
      'orders',
      '--timestamp',
      '2026-01-01T00:00:00Z',
    ]);
    expect(atTime.code).toBe(0);
    const posts = api.received.filter((r) => r.method === 'POST' && r.path.endsWith('/reset-offsets'));
    expect(posts.map((r) => [r.path, r.body])).toEqual([
      ['/api/v1/kafka/groups/billing/reset-offsets', { topic: 'orders', to: 'earliest' }],
      [
        '/api/v1/kafka/groups/billing/reset-offsets',
        { topic: 'orders', to: 'timestamp', timestamp: Date.UTC(2026, 0, 1) },
      ],
    ]);

    expect((await cli(['kafka', 'groups', 'reset-offsets', 'billing', '-t', 'orders'])).code).toBe(2);
    expect(
      (await cli(['kafka', 'groups', 'reset-offsets', 'billing', '-t', 'orders', '--to', 'timestamp'])).code,
    ).toBe(2);
    expect(
      (await cli(['kafka', 'groups', 'reset-offsets', 'billing', '-t', 'orders', '--timestamp', 'soon']))
        .code,
    ).toBe(2);
    expect((await cli(['kafka', 'groups', 'reset-offsets', 'billing', '--to', 'latest'])).code).toBe(2);
  });

  it('deletes a group; a second delete is not found (exit 1) unless --if-exists', async () => {
    expect(await cli(['kafka', 'groups', 'delete', 'search'])).toMatchObject({
      code: 0,
      stdout: 'deleted search\n',
    });
    const again = await cli(['kafka', 'groups', 'delete', 'search']);
    expect(again.code).toBe(1);
    expect((await cli(['kafka', 'groups', 'delete', 'search', '--if-exists'])).code).toBe(0);
  });

  it('lists AMQP queues and links, and describes one', async () => {
    const queues = await cli(['amqp', 'queues']);
    expect(queues.stdout).toBe('ID    MESSAGES  UNSETTLED  CONSUMERS\njobs  3         1          2\n');
    const link = await cli(['amqp', 'links', 'describe', 'link-1', '-o', 'json']);
    expect(JSON.parse(link.stdout)).toEqual({ id: 'link-1', role: 'receiver', address: 'jobs', credit: 100 });
    const unknown = await cli(['mqtt', 'clients']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('robustmq: NOT_FOUND: no protocol mqtt with admin resources\n');
  });

  it('shows the field a 400 names, and exits 4 on a refused login', async () => {
    const bad = await cli(['kafka', 'groups', 'reset-offsets', 'billing', '-t', 'unknown', '--to', 'latest']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      'robustmq: INVALID_ARGUMENT: the group has no offsets on topic unknown (topic)\n',
    );
    const refused = await run(['kafka', 'groups'], {
      env: { ROBUSTMQ_API_URL: api.url, ROBUSTMQ_USER: 'admin', ROBUSTMQ_PASSWORD: 'wrong' },
    });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toBe('robustmq: UNAUTHENTICATED: wrong user name or password\n');
  });
});
