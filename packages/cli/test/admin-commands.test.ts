import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/cli.js';
import { ADMIN_PASSWORD, startServer, type TestServer } from './helpers/server.js';

/** Parses `--output json`. */
const parse = <T>(text: string) => JSON.parse(text) as T;

describe('robustmq admin commands against a real server', () => {
  let server: TestServer;
  const cli = (args: string[], input?: string) => run(args, { env: server.env, input });

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server.stop();
  });

  it('cluster: shows the node, its roles and the meta leader', async () => {
    const table = await cli(['cluster']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^version: +\d+\.\d+\.\d+/m);
    expect(table.stdout).toMatch(/^meta leader: +1$/m);
    expect(table.stdout).toMatch(/^NODE +ROLES +RPC ADDRESS +LEADER$/m);
    expect(table.stdout).toMatch(/^1 +meta,broker,journal +- +yes$/m);
    const json = parse<{ nodeId: number; nodes: unknown[] }>((await cli(['cluster', '-o', 'json'])).stdout);
    expect(json.nodeId).toBe(1);
    expect(json.nodes).toHaveLength(1);
  });

  it('topic: create, list, describe, alter, delete, with the errors a user meets', async () => {
    const created = await cli([
      'topic',
      'create',
      'orders',
      '--partitions',
      '3',
      '--retention',
      '7d',
      '--retention-bytes',
      '1GiB',
      '--config',
      'cleanup.policy=delete',
    ]);
    expect(created).toMatchObject({ code: 0, stdout: 'created topic orders\n', stderr: '' });

    // The storage classes offered are the server's; one the node's engine does not provide is refused.
    const tiered = await cli(['topic', 'create', 'cold', '--storage-class', 'tiered']);
    expect(tiered.code).toBe(1);
    expect(tiered.stderr).toMatch(/^robustmq: INVALID_ARGUMENT: .*storage class tiered needs .*storage-s3/);
    const again = await cli(['topic', 'create', 'orders']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^robustmq: ALREADY_EXISTS: /);

    const list = await cli(['topic', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME +PARTITIONS +STORAGE +RETENTION +RETENTION SIZE +SIZE +MESSAGES$/m);
    expect(list.stdout).toMatch(/^orders +3 +file +7d +1\.0 GiB +0 B +0$/m);

    const described = await cli(['topic', 'describe', 'orders']);
    expect(described.code).toBe(0);
    expect(described.stdout).toMatch(/^config cleanup\.policy: +delete$/m);
    expect(described.stdout).toMatch(/^PARTITION +START OFFSET +NEXT OFFSET +MESSAGES +SIZE$/m);
    expect(described.stdout).toMatch(/^2 +0 +0 +0 +0 B$/m);

    const altered = await cli([
      'topic',
      'alter',
      'orders',
      '-p',
      '4',
      '--delete-config',
      'cleanup.policy',
      '--retention',
      '12h',
    ]);
    expect(altered).toMatchObject({ code: 0, stdout: 'altered topic orders\n' });
    const json = parse<{
      partitions: number;
      retentionMs: number;
      configs: object;
      partitionDetails: unknown[];
    }>((await cli(['topic', 'describe', 'orders', '-o', 'json'])).stdout);
    expect(json).toMatchObject({ partitions: 4, retentionMs: 12 * 3_600_000, configs: {} });
    expect(json.partitionDetails).toHaveLength(4);

    const unlimited = await cli(['topic', 'alter', 'orders', '--retention-bytes', 'unlimited']);
    expect(unlimited).toMatchObject({ code: 0, stderr: '' });
    expect((await cli(['topic', 'describe', 'orders'])).stdout).toMatch(/^retention size: +unlimited$/m);

    const missing = await cli(['topic', 'describe', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^robustmq: NOT_FOUND: .*nope/);

    expect(await cli(['topic', 'delete', 'orders'])).toMatchObject({
      code: 0,
      stdout: 'deleted topic orders\n',
    });
    expect((await cli(['topic', 'delete', 'orders'])).code).toBe(1);
    expect(await cli(['topic', 'delete', 'orders', '--if-exists'])).toMatchObject({
      code: 0,
      stdout: 'topic orders does not exist: nothing deleted\n',
    });
    expect(
      JSON.parse((await cli(['topic', 'delete', 'orders', '--if-exists', '-o', 'json'])).stdout),
    ).toEqual({
      absent: 'orders',
    });
    expect((await cli(['topic', 'list'])).stdout).not.toMatch(/^orders /m);
  });

  it('user: create (password from a flag or stdin), list with pages, passwd, delete', async () => {
    expect(await cli(['user', 'create', 'alice', '--new-password', 'alice-pw'])).toMatchObject({
      code: 0,
      stdout: 'created user alice\n',
    });
    expect(
      await cli(['user', 'create', 'bob', '--new-password-stdin', '--superuser'], 'bob-pw\n'),
    ).toMatchObject({
      code: 0,
      stdout: 'created user bob (superuser)\n',
    });
    const noPassword = await cli(['user', 'create', 'carol']);
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toMatch(/--new-password/);

    const list = await cli(['user', 'list']);
    expect(list.stdout).toMatch(/^NAME +SUPERUSER +CREATED$/m);
    expect(list.stdout).toMatch(/^alice +no +\d{4}-/m);
    expect(list.stdout).toMatch(/^bob +yes +/m);

    const firstPage = await cli(['user', 'list', '--limit', '1', '-o', 'json']);
    const page = parse<{ items: Array<{ name: string }>; next: string | null }>(firstPage.stdout);
    expect(page.items).toHaveLength(1);
    expect(page.next).not.toBeNull();
    const tablePage = await cli(['user', 'list', '--limit', '1']);
    expect(tablePage.stderr).toMatch(/^more after .*: add --after \S+, or --all$/m);
    const all = parse<{ items: Array<{ name: string }>; next: null }>(
      (await cli(['user', 'list', '--limit', '1', '--all', '-o', 'json'])).stdout,
    );
    expect(all.items.map((u) => u.name).sort()).toEqual(['admin', 'alice', 'bob']);
    expect(all.next).toBeNull();
    const rest = parse<{ items: Array<{ name: string }> }>(
      (await cli(['user', 'list', '--after', page.items[0]!.name, '-o', 'json'])).stdout,
    );
    expect(rest.items).toHaveLength(2);

    // bob (a superuser) logs in with the password he was given, then with a changed one.
    const asBob = (password: string) =>
      run(['topic', 'list'], {
        env: { ROBUSTMQ_API_URL: server.url, ROBUSTMQ_USER: 'bob', ROBUSTMQ_PASSWORD: password },
      });
    expect((await asBob('bob-pw')).code).toBe(0);
    expect(await cli(['user', 'passwd', 'bob', '--new-password', 'bob-pw-2'])).toMatchObject({ code: 0 });
    expect((await asBob('bob-pw')).code).toBe(4);
    expect((await asBob('bob-pw-2')).code).toBe(0);

    // alice is no superuser: the admin API turns her away.
    const asAlice = await run([
      'topic',
      'list',
      '--server',
      server.url,
      '--user',
      'alice',
      '--password',
      'alice-pw',
    ]);
    expect(asAlice.code).toBe(4);
    expect(asAlice.stderr).toMatch(/^robustmq: FORBIDDEN: /);

    expect(await cli(['user', 'delete', 'alice'])).toMatchObject({ code: 0, stdout: 'deleted user alice\n' });
    expect((await cli(['user', 'delete', 'alice'])).code).toBe(1);
    expect((await cli(['user', 'delete', 'alice', '--if-exists'])).code).toBe(0);
  });

  it('takes a token from --token or ROBUSTMQ_TOKEN instead of a password', async () => {
    const login = await fetch(`${server.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    const { token } = (await login.json()) as { token: string };
    expect((await run(['cluster', '--server', server.url, '--token', token])).code).toBe(0);
    expect(
      (await run(['cluster'], { env: { ROBUSTMQ_API_URL: server.url, ROBUSTMQ_TOKEN: token } })).code,
    ).toBe(0);
    const bad = await run(['cluster', '--server', server.url, '--token', 'not-a-token']);
    expect(bad.code).toBe(4);
  });

  it('acl: create, list, delete', async () => {
    const created = await cli([
      'acl',
      'create',
      '--principal',
      'alice',
      '--action',
      'publish',
      '--topic',
      'sensors/#',
      '--permission',
      'deny',
      '-o',
      'json',
    ]);
    expect(created.code).toBe(0);
    const rule = parse<{ id: string; principal: string; permission: string }>(created.stdout);
    expect(rule).toMatchObject({ principal: 'alice', permission: 'deny' });

    const list = await cli(['acl', 'list']);
    expect(list.stdout).toMatch(/^ID +PERMISSION +PRINCIPAL +ACTION +TOPIC$/m);
    expect(list.stdout).toContain(`${rule.id}  deny        alice      publish  sensors/#`);

    expect((await cli(['acl', 'create', '--principal', '*', '--action', 'fly', '--topic', '#'])).code).toBe(
      2,
    );
    expect(await cli(['acl', 'delete', rule.id])).toMatchObject({
      code: 0,
      stdout: `deleted rule ${rule.id}\n`,
    });
    expect((await cli(['acl', 'list'])).stdout).toBe('(none)\n');
    expect((await cli(['acl', 'delete', rule.id])).code).toBe(1);
  });

  it('config: get all or one, set a runtime setting, refuse the others', async () => {
    const all = await cli(['config', 'get']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^SETTING +VALUE +RUNTIME$/m);
    expect(all.stdout).toMatch(/^log\.level +info +yes$/m);
    expect(all.stdout).toMatch(/^admin\.password +\*+ +no$/m);
    expect(await cli(['config', 'get', 'log.level'])).toMatchObject({ code: 0, stdout: 'info\n' });
    expect((await cli(['config', 'get', 'no.such'])).code).toBe(1);

    const set = await cli(['config', 'set', 'log.level=debug', 'auth.allow_anonymous=false']);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^log\.level +debug +yes$/m);
    expect(set.stdout).toMatch(/^auth\.allow_anonymous +false +yes$/m);
    expect(await cli(['config', 'get', 'log.level'])).toMatchObject({ stdout: 'debug\n' });
    const json = parse<{ settings: Record<string, unknown> }>(
      (await cli(['config', 'get', 'auth.allow_anonymous', '-o', 'json'])).stdout,
    );
    expect(json.settings).toEqual({ 'auth.allow_anonymous': false });

    const refused = await cli(['config', 'set', 'mqtt.port=1884']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^robustmq: INVALID_ARGUMENT: .*mqtt\.port/);
    expect((await cli(['config', 'set', 'log.level'])).code).toBe(2);
    expect((await cli(['config', 'set', 'auth.allow_anonymous=maybe'])).code).toBe(2);
    expect((await cli(['config', 'set', 'log.level=info', 'auth.allow_anonymous=true'])).code).toBe(0);
  });
});
