import { DEFAULT_SHARD_CONFIG } from '@robustmq/core';
import { readFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import { LineClient } from './helpers/line-client.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startAdminNode, type AdminNode } from './helpers/admin-node.js';

const names = (items: unknown) => (items as Array<{ name: string }>).map((item) => item.name);

let a: AdminNode;
beforeAll(async () => {
  a = await startAdminNode();
});
afterAll(async () => {
  await a.stop();
});

describe('admin API access', () => {
  it('keeps health, metrics and the OpenAPI document open and refuses the API without a token', async () => {
    expect((await fetch(`${a.url}/health/ready`)).status).toBe(200);
    expect((await fetch(`${a.url}/metrics`)).status).toBe(200);
    expect((await fetch(`${a.url}/api/openapi.json`)).status).toBe(200);
    for (const path of [
      '/api/v1/cluster',
      '/api/v1/topics',
      '/api/v1/users',
      '/api/v1/acls',
      '/api/v1/config',
      '/api/v1/lines/connections',
    ]) {
      const answer = await a.call('GET', path, { token: null });
      expect(answer.status, path).toBe(401);
      expect(answer.body.error.code).toBe('UNAUTHENTICATED');
    }
    const forged = await a.call('GET', '/api/v1/cluster', { token: 'not-a-token' });
    expect(forged.status).toBe(401);
    expect(forged.body.error.message).toMatch(/unknown or expired/);
  });

  it('logs in superusers only', async () => {
    const wrong = await a.call('POST', '/api/v1/login', {
      body: { username: 'admin', password: 'nope' },
      token: null,
    });
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHENTICATED' } } });
    const unknown = await a.call('POST', '/api/v1/login', {
      body: { username: 'ghost', password: 'x' },
      token: null,
    });
    expect(unknown.status).toBe(401);

    const ok = await a.call('POST', '/api/v1/login', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
      token: null,
    });
    expect(ok.status).toBe(200);
    expect(ok.body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ok.body.expiresAt).toBeGreaterThan(Date.now());

    expect(
      (await a.call('POST', '/api/v1/users', { body: { name: 'plain', password: 'pw-plain' } })).status,
    ).toBe(201);
    const plain = await a.call('POST', '/api/v1/login', {
      body: { username: 'plain', password: 'pw-plain' },
      token: null,
    });
    expect(plain).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    expect((await a.call('DELETE', '/api/v1/users/plain')).status).toBe(204);
  });

  it('drops the tokens of a deleted user', async () => {
    await a.call('POST', '/api/v1/users', { body: { name: 'boss', password: 'pw-boss', superuser: true } });
    const token = await a.login('boss', 'pw-boss');
    expect((await a.call('GET', '/api/v1/cluster', { token })).status).toBe(200);
    expect((await a.call('DELETE', '/api/v1/users/boss')).status).toBe(204);
    expect((await a.call('GET', '/api/v1/cluster', { token })).status).toBe(401);
  });
});

describe('admin API input checks', () => {
  it('names the unknown field, the mistyped field and the bad query parameter', async () => {
    const unknown = await a.call('POST', '/api/v1/topics', { body: { name: 'x1', partition: 3 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'partition' });

    const mistyped = await a.call('POST', '/api/v1/topics', { body: { name: 'x1', partitions: '3' } });
    expect(mistyped.status).toBe(400);
    expect(mistyped.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'partitions' });

    const nested = await a.call('POST', '/api/v1/topics', {
      body: { name: 'x1', configs: { 'cleanup.policy': 1 } },
    });
    expect(nested.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'configs.cleanup.policy' });

    const badName = await a.call('POST', '/api/v1/topics', { body: { name: 'a b' } });
    expect(badName.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'name' });

    const limit = await a.call('GET', '/api/v1/topics?limit=5000');
    expect(limit.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'limit' });
    const query = await a.call('GET', '/api/v1/users?page=2');
    expect(query.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'page' });

    // Nothing of a refused request was applied.
    expect((await a.call('GET', '/api/v1/topics/x1')).status).toBe(404);
  });

  it('answers 413 for a body over 1 MiB and 400 for one that is not JSON', async () => {
    const big = await a.call('POST', '/api/v1/users', {
      body: { name: 'big', password: 'x'.repeat(1024 * 1024 + 10) },
    });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('TOO_LARGE');
    const garbled = await a.call('POST', '/api/v1/users', { raw: '{"name": ' });
    expect(garbled.status).toBe(400);
    expect(garbled.body.error.code).toBe('INVALID_ARGUMENT');
    expect((await a.call('GET', '/api/v1/users/big')).status).toBe(404);
    const token = await a.login();
    const text = await fetch(`${a.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: 'name=x',
    });
    expect(text.status).toBe(400);
    expect(((await text.json()) as { error: { code: string } }).error.code).toBe('INVALID_ARGUMENT');
    const none = await fetch(`${a.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(none.status).toBe(400);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const answer = await a.call('GET', '/api/v2/nothing');
    expect(answer).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
  });
});

describe('cluster', () => {
  it('shows this node, its roles, the meta leader, version and uptime', async () => {
    const { status, body } = await a.call('GET', '/api/v1/cluster');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      version: a.node.status.snapshot().version,
      nodeId: 1,
      metaLeader: 1,
      nodes: [{ id: 1, roles: ['meta', 'broker', 'journal'], rpcAddress: null, leader: true }],
    });
    expect(body.clusterId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });
});

describe('topics', () => {
  it("records the storage class of the node's engine and refuses any other", async () => {
    // The node stores in the journal: a topic cannot be recorded as stored elsewhere.
    const elsewhere = await a.call('POST', '/api/v1/topics', {
      body: { name: 'hot', storageClass: 'memory' },
    });
    expect(elsewhere).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_ARGUMENT', field: 'storageClass' } },
    });
    expect(elsewhere.body.error.message).toMatch(/storage class memory needs .*@robustmq\/storage-memory/);
    expect((await a.call('GET', '/api/v1/topics/hot')).status).toBe(404);
    const named = await a.call('POST', '/api/v1/topics', { body: { name: 'filed', storageClass: 'file' } });
    expect(named).toMatchObject({ status: 201, body: { storageClass: 'file' } });
    expect((await a.call('DELETE', '/api/v1/topics/filed')).status).toBe(204);
  });

  it('creates, lists page by page, describes, alters and deletes topics', async () => {
    const created = await a.call('POST', '/api/v1/topics', {
      body: {
        name: 'orders',
        partitions: 2,
        retentionMs: 3_600_000,
        configs: { 'cleanup.policy': 'delete' },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'orders',
      partitions: 2,
      storageClass: 'file',
      retentionMs: 3_600_000,
      retentionBytes: null,
      configs: { 'cleanup.policy': 'delete' },
      sizeBytes: 0,
      messages: 0,
    });
    const again = await a.call('POST', '/api/v1/topics', { body: { name: 'orders' } });
    expect(again).toMatchObject({ status: 409, body: { error: { code: 'ALREADY_EXISTS' } } });
    for (const name of ['payments', 'returns']) {
      expect((await a.call('POST', '/api/v1/topics', { body: { name } })).status).toBe(201);
    }

    // Messages stored in a partition show in its offsets and sizes.
    const storage = a.node.context!.storage;
    await storage.append('orders/1', [{ recordCount: 3, maxTimestamp: Date.now(), data: Buffer.alloc(100) }]);

    const first = await a.call('GET', '/api/v1/topics?limit=2');
    expect(names(first.body.items)).toEqual(['orders', 'payments']);
    expect(first.body.next).toBe('payments');
    const second = await a.call('GET', `/api/v1/topics?limit=2&after=${first.body.next}`);
    expect(second.body).toMatchObject({ items: [{ name: 'returns' }], next: null });
    expect(first.body.items[0].messages).toBe(3);
    expect(first.body.items[0].sizeBytes).toBeGreaterThanOrEqual(100);

    const described = await a.call('GET', '/api/v1/topics/orders');
    expect(described.body.partitionDetails).toEqual([
      { partition: 0, logStartOffset: 0, nextOffset: 0, sizeBytes: 0 },
      { partition: 1, logStartOffset: 0, nextOffset: 3, sizeBytes: expect.any(Number) as number },
    ]);

    const altered = await a.call('PATCH', '/api/v1/topics/orders', {
      body: {
        partitions: 3,
        retentionBytes: 1_000_000,
        configs: { 'cleanup.policy': null, 'segment.bytes': '1048576' },
      },
    });
    expect(altered.status).toBe(200);
    expect(altered.body).toMatchObject({
      partitions: 3,
      retentionBytes: 1_000_000,
      configs: { 'segment.bytes': '1048576' },
    });
    expect(altered.body.configs['cleanup.policy']).toBeUndefined();
    expect((await storage.shardInfo('orders/2')).config.retentionBytes).toBe(1_000_000);

    const shrink = await a.call('PATCH', '/api/v1/topics/orders', { body: { partitions: 1 } });
    expect(shrink.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'partitions' });
    const badConfig = await a.call('PATCH', '/api/v1/topics/orders', {
      body: { retentionMs: 5, configs: { 'segment.bytes': 'lots' } },
    });
    expect(badConfig.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'configs.segment.bytes' });
    expect((await a.call('GET', '/api/v1/topics/orders')).body.retentionMs).toBe(3_600_000);

    expect((await a.call('DELETE', '/api/v1/topics/orders')).status).toBe(204);
    expect((await a.call('DELETE', '/api/v1/topics/orders')).status).toBe(404);
    expect((await a.call('GET', '/api/v1/topics/orders')).status).toBe(404);
    expect((await a.call('PATCH', '/api/v1/topics/orders', { body: {} })).status).toBe(404);
    await expect(storage.shardInfo('orders/0')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('takes retention.ms and retention.bytes in configs as the retention the topic has, as Kafka does', async () => {
    const created = await a.call('POST', '/api/v1/topics', {
      body: {
        name: 'hourly',
        configs: { 'retention.ms': '3600000', 'retention.bytes': '-1', 'flush.ms': '5' },
      },
    });
    expect(created.body).toMatchObject({
      retentionMs: 3_600_000,
      retentionBytes: null,
      configs: { 'flush.ms': '5' },
    });
    expect(created.body.configs['retention.ms']).toBeUndefined();
    const storage = a.node.context!.storage;
    expect((await storage.shardInfo('hourly/0')).config.retentionMs).toBe(3_600_000);

    const altered = await a.call('PATCH', '/api/v1/topics/hourly', {
      body: { configs: { 'retention.ms': null, 'retention.bytes': '1000000' } },
    });
    expect(altered.body).toMatchObject({
      retentionMs: DEFAULT_SHARD_CONFIG.retentionMs,
      retentionBytes: 1_000_000,
    });
    expect((await storage.shardInfo('hourly/0')).config.retentionBytes).toBe(1_000_000);

    for (const [body, field] of [
      [{ name: 'bad-1', configs: { 'retention.ms': 'abc' } }, 'configs.retention.ms'],
      [{ name: 'bad-2', configs: { 'retention.bytes': '-2' } }, 'configs.retention.bytes'],
      [{ name: 'bad-3', retentionMs: 5, configs: { 'retention.ms': '6' } }, 'configs.retention.ms'],
      [{ name: 'bad-4', configs: { 'cleanup.policy': 'compact' } }, 'configs.cleanup.policy'],
    ] as const) {
      const refused = await a.call('POST', '/api/v1/topics', { body });
      expect(refused).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ARGUMENT', field } } });
      expect((await a.call('GET', `/api/v1/topics/${body.name}`)).status).toBe(404);
    }
    expect((await a.call('DELETE', '/api/v1/topics/hourly')).status).toBe(204);
  });
});

describe('users', () => {
  it('creates, lists, changes the password of and deletes users', async () => {
    for (const name of ['u1', 'u2', 'u3']) {
      const created = await a.call('POST', '/api/v1/users', { body: { name, password: `pw-${name}` } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name, superuser: false });
    }
    expect((await a.call('POST', '/api/v1/users', { body: { name: 'u1', password: 'x' } })).status).toBe(409);
    const bad = await a.call('POST', '/api/v1/users', { body: { name: 'no spaces', password: 'x' } });
    expect(bad.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'name' });
    const empty = await a.call('POST', '/api/v1/users', { body: { name: 'u9', password: '' } });
    expect(empty.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'password' });

    const first = await a.call('GET', '/api/v1/users?limit=2');
    expect(names(first.body.items)).toEqual(['admin', 'u1']);
    expect(first.body.items[0]).toEqual({
      name: 'admin',
      superuser: true,
      createdAt: expect.any(Number) as number,
    });
    const rest = await a.call('GET', `/api/v1/users?after=${first.body.next}`);
    expect(rest.body).toMatchObject({ items: [{ name: 'u2' }, { name: 'u3' }], next: null });

    const users = a.node.users!;
    const before = await users.get('u1');
    expect((await a.call('PUT', '/api/v1/users/u1/password', { body: { password: 'new-pw' } })).status).toBe(
      204,
    );
    const after = await users.get('u1');
    expect(after!.passwordHash).not.toBe(before!.passwordHash);
    expect(after!.scram!['SCRAM-SHA-256']!.storedKey).not.toBe(before!.scram!['SCRAM-SHA-256']!.storedKey);
    const auth = a.node.context!.auth;
    expect(
      await auth.authenticate({ protocol: 'lines', username: 'u1', password: Buffer.from('new-pw') }),
    ).toMatchObject({
      username: 'u1',
    });
    expect(
      await auth.authenticate({ protocol: 'lines', username: 'u1', password: Buffer.from('pw-u1') }),
    ).toBeNull();
    expect((await a.call('PUT', '/api/v1/users/ghost/password', { body: { password: 'x' } })).status).toBe(
      404,
    );

    for (const name of ['u1', 'u2', 'u3'])
      expect((await a.call('DELETE', `/api/v1/users/${name}`)).status).toBe(204);
    expect((await a.call('DELETE', '/api/v1/users/u1')).status).toBe(404);
    const last = await a.call('DELETE', '/api/v1/users/admin');
    expect(last).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT' } } });
  });
});

describe('ACL rules', () => {
  it('are created, listed and deleted, and enforced by the Authorizer', async () => {
    const auth = a.node.context!.auth;
    const alice = { username: 'alice', superuser: false };
    const root = { username: 'root', superuser: true };
    expect(await auth.authorize(alice, 'publish', 'secret/x')).toBe(true);

    const rule = async (body: object) => {
      const answer = await a.call('POST', '/api/v1/acls', { body });
      expect(answer.status).toBe(201);
      return answer.body as { id: string };
    };
    const deny = await rule({ principal: 'alice', action: 'publish', topic: 'secret/#', permission: 'deny' });
    expect(deny).toMatchObject({
      principal: 'alice',
      action: 'publish',
      topic: 'secret/#',
      permission: 'deny',
    });
    await rule({ principal: '*', action: 'all', topic: 'secret/public', permission: 'allow' });

    expect(await auth.authorize(alice, 'publish', 'secret/x')).toBe(false);
    expect(await auth.authorize(alice, 'publish', 'secret/public')).toBe(false); // deny wins
    expect(await auth.authorize(alice, 'subscribe', 'secret/x')).toBe(true); // other action: default
    expect(await auth.authorize(root, 'publish', 'secret/x')).toBe(true); // superusers bypass

    // With acl_default = deny only allow rules let anyone in.
    const patched = await a.call('PATCH', '/api/v1/config', { body: { 'auth.acl_default': 'deny' } });
    expect(patched.body.settings['auth.acl_default']).toBe('deny');
    const bob = { username: 'bob', superuser: false };
    expect(await auth.authorize(bob, 'subscribe', 'secret/public')).toBe(true);
    expect(await auth.authorize(bob, 'subscribe', 'secret/other')).toBe(false);
    expect(await auth.authorize({ username: null, superuser: false }, 'publish', 'secret/public')).toBe(true);
    await rule({ principal: 'bob', action: 'subscribe', topic: 'sensors/#', permission: 'allow' });
    expect(await auth.authorize(bob, 'subscribe', 'sensors/+/temp')).toBe(true);
    expect(await auth.authorize(bob, 'subscribe', '#')).toBe(false); // not covered by the allow
    await a.call('PATCH', '/api/v1/config', { body: { 'auth.acl_default': 'allow' } });

    const listed = await a.call('GET', '/api/v1/acls?limit=2');
    expect(listed.body.items).toHaveLength(2);
    const all = [
      ...listed.body.items,
      ...(await a.call('GET', `/api/v1/acls?after=${listed.body.next}`)).body.items,
    ];
    expect(all.map((r: { id: string }) => r.id)).toContain(deny.id);
    expect(all).toHaveLength(3);

    expect((await a.call('DELETE', `/api/v1/acls/${deny.id}`)).status).toBe(204);
    expect((await a.call('DELETE', `/api/v1/acls/${deny.id}`)).status).toBe(404);
    expect(await auth.authorize(alice, 'publish', 'secret/x')).toBe(true);
    for (const r of all) await a.call('DELETE', `/api/v1/acls/${(r as { id: string }).id}`);
  });

  it('follows rules written to the meta store by another node', async () => {
    const auth = a.node.context!.auth;
    const carol = { username: 'carol', superuser: false };
    const rule = { id: 'from-elsewhere', principal: 'carol', action: 'all', topic: '#', permission: 'deny' };
    await a.node.context!.meta.put('/acls/from-elsewhere', Buffer.from(JSON.stringify(rule)));
    await expect.poll(() => auth.authorize(carol, 'publish', 'a/b')).toBe(false);
    await a.node.context!.meta.delete('/acls/from-elsewhere');
    await expect.poll(() => auth.authorize(carol, 'publish', 'a/b')).toBe(true);
  });

  it('refuses malformed rules, naming the field', async () => {
    const topic = await a.call('POST', '/api/v1/acls', {
      body: { principal: 'alice', action: 'publish', topic: 'a/#/b', permission: 'allow' },
    });
    expect(topic.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'topic' });
    const action = await a.call('POST', '/api/v1/acls', {
      body: { principal: 'alice', action: 'write', topic: 'a', permission: 'allow' },
    });
    expect(action.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'action' });
    const missing = await a.call('POST', '/api/v1/acls', {
      body: { principal: 'alice', action: 'publish', topic: 'a' },
    });
    expect(missing.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'permission' });
  });
});

describe('config', () => {
  it('shows the effective config with secrets masked', async () => {
    const { status, body } = await a.call('GET', '/api/v1/config');
    expect(status).toBe(200);
    expect(body.settings).toMatchObject({
      'log.level': 'info',
      'admin.password': '******',
      'admin.token_ttl_seconds': 43200,
      'http.port': 0,
      'lines.port': 0,
      'storage.engine': '@robustmq/journal',
    });
    expect(JSON.stringify(body)).not.toContain(ADMIN_PASSWORD);
    expect(body.runtime).toEqual(['log.level', 'auth.allow_anonymous', 'auth.acl_default']);
  });

  it('changes the log level at runtime, for loggers made before the change too', async () => {
    const logger = a.node.context!.logger.child({ component: 'test' });
    logger.debug('hidden');
    const changed = await a.call('PATCH', '/api/v1/config', { body: { 'log.level': 'debug' } });
    expect(changed.status).toBe(200);
    expect(changed.body.settings['log.level']).toBe('debug');
    logger.debug('shown');
    await a.call('PATCH', '/api/v1/config', { body: { 'log.level': 'info' } });
    logger.debug('hidden again');
    const debug = a.logs
      .filter((l) => l.level === 'debug' && l.fields.component === 'test')
      .map((l) => l.msg);
    expect(debug).toEqual(['shown']);
  });

  it('refuses settings that do not change at runtime and bad values, changing nothing', async () => {
    const fixed = await a.call('PATCH', '/api/v1/config', { body: { 'log.level': 'debug', 'http.port': 1 } });
    expect(fixed.status).toBe(400);
    expect(fixed.body.error.field).toBe('http.port');
    expect(fixed.body.error.message).toMatch(/runtime/);
    const bad = await a.call('PATCH', '/api/v1/config', { body: { 'log.level': 'loud' } });
    expect(bad.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'log.level' });
    expect((await a.call('GET', '/api/v1/config')).body.settings['log.level']).toBe('info');
  });
});

describe('protocol resources', () => {
  it("serves each plugin's admin resources: list, get, remove and actions", async () => {
    const port = a.node.listeners.find((l) => l.protocol === 'lines')!.port;
    const clients = [
      await LineClient.connect(port),
      await LineClient.connect(port),
      await LineClient.connect(port),
    ];
    try {
      await Promise.all(clients.map((c) => c.request('ECHO hi')));
      const first = await a.call('GET', '/api/v1/lines/connections?limit=2');
      expect(first.status).toBe(200);
      expect(first.body.items).toHaveLength(2);
      expect(first.body.items[0]).toMatchObject({ remoteAddress: '127.0.0.1', listener: 'tcp' });
      const rest = await a.call('GET', `/api/v1/lines/connections?limit=2&after=${first.body.next}`);
      expect(rest.body.items).toHaveLength(1);
      expect(rest.body.next).toBeNull();

      const id = first.body.items[0].id as string;
      expect((await a.call('GET', `/api/v1/lines/connections/${id}`)).body).toMatchObject({ id });
      expect((await a.call('GET', '/api/v1/lines/connections/999999')).status).toBe(404);

      const said = await a.call('POST', `/api/v1/lines/connections/${id}/say`, {
        body: { text: 'hello operator' },
      });
      expect(said).toMatchObject({ status: 200, body: { written: 15 } });
      const bad = await a.call('POST', `/api/v1/lines/connections/${id}/say`, { body: { text: 5 } });
      expect(bad).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ARGUMENT' } } });
      expect((await a.call('POST', `/api/v1/lines/connections/${id}/shout`, { body: {} })).status).toBe(404);

      expect((await a.call('DELETE', `/api/v1/lines/connections/${id}`)).status).toBe(204);
      expect((await a.call('DELETE', `/api/v1/lines/connections/${id}`)).status).toBe(404);
      expect((await a.call('GET', '/api/v1/lines/connections')).body.items).toHaveLength(2);

      const fixed = await a.call('DELETE', '/api/v1/lines/commands/ECHO');
      expect(fixed.status).toBe(405);
      expect((await a.call('GET', '/api/v1/lines/nothing')).status).toBe(404);
      const slashed = await a.call('GET', `/api/v1/lines/commands/${encodeURIComponent('a/b')}`);
      expect(slashed.body.error.message).toMatch(/no a\/b$/);
      expect((await a.call('GET', '/api/v1/nothing/connections')).status).toBe(404);
    } finally {
      for (const c of clients) c.close();
    }
  });
});

describe('metrics and the OpenAPI document', () => {
  it('exposes process, storage, meta and plugin metrics', async () => {
    await a.node.context!.storage.createShard('metrics-check/0');
    await a.node.context!.storage.append('metrics-check/0', [
      { recordCount: 1, maxTimestamp: Date.now(), data: Buffer.alloc(10) },
    ]);
    const text = await (await fetch(`${a.url}/metrics`)).text();
    for (const name of [
      'robustmq_nodejs_eventloop_lag_seconds',
      'robustmq_nodejs_heap_size_used_bytes',
      'robustmq_process_resident_memory_bytes',
      'robustmq_storage_append_seconds',
      'robustmq_storage_appended_bytes_total',
      'robustmq_storage_bytes',
      'robustmq_storage_shards',
      'robustmq_journal_fsync_seconds',
      'robustmq_meta_revision',
      'robustmq_lines_bad_input_total',
    ]) {
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(text).toMatch(
      /^robustmq_storage_append_seconds_count\{node="1",engine="@robustmq\/journal"\} [1-9]/m,
    );
    expect(text).toMatch(/^robustmq_storage_shards\{engine="@robustmq\/journal",node="1"\} [1-9]/m);
  });

  it('has every server metric the Grafana dashboard reads', async () => {
    const dashboard = readFileSync(new URL('../../../docs/grafana/robustmq.json', import.meta.url), 'utf8');
    const used = new Set(dashboard.match(/robustmq_[a-z0-9_]+/g));
    const serverOwned = /^robustmq_(storage|journal|nodejs|process|connections|meta_revision)/;
    const text = await (await fetch(`${a.url}/metrics`)).text();
    const wanted = [...used].filter((name) => serverOwned.test(name));
    expect(wanted.length).toBeGreaterThan(10);
    for (const name of wanted) {
      const base = name.replace(/_(bucket|count|sum)$/, '');
      expect(text, name).toMatch(new RegExp(`^# TYPE ${base} `, 'm'));
    }
  });

  it('serves a valid OpenAPI 3 document covering every route', async () => {
    const document = (await (await fetch(`${a.url}/api/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    await SwaggerParser.validate(structuredClone(document) as never);
    expect(Object.keys(document.paths).sort()).toEqual([
      '/api/v1/acls',
      '/api/v1/acls/{id}',
      '/api/v1/cluster',
      '/api/v1/config',
      '/api/v1/login',
      '/api/v1/topics',
      '/api/v1/topics/{name}',
      '/api/v1/users',
      '/api/v1/users/{name}',
      '/api/v1/users/{name}/password',
      '/api/v1/{protocol}/{resource}',
      '/api/v1/{protocol}/{resource}/{id}',
      '/api/v1/{protocol}/{resource}/{id}/{action}',
    ]);
  });
});
