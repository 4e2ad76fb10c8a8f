import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminNode, type AdminNode } from './helpers/admin-node.js';

let a: AdminNode;
beforeAll(async () => {
  a = await startAdminNode();
});
afterAll(async () => {
  await a.stop();
});

describe('path parameters', () => {
  it('reach topics and users by the longest names they may have', async () => {
    const topic = 't'.repeat(249);
    expect((await a.call('POST', '/api/v1/topics', { body: { name: topic } })).status).toBe(201);
    expect(await a.call('GET', `/api/v1/topics/${topic}`)).toMatchObject({
      status: 200,
      body: { name: topic },
    });
    const altered = await a.call('PATCH', `/api/v1/topics/${topic}`, { body: { partitions: 2 } });
    expect(altered).toMatchObject({ status: 200, body: { partitions: 2 } });
    expect((await a.call('DELETE', `/api/v1/topics/${topic}`)).status).toBe(204);

    const user = 'u'.repeat(128);
    expect((await a.call('POST', '/api/v1/users', { body: { name: user, password: 'pw' } })).status).toBe(
      201,
    );
    const changed = await a.call('PUT', `/api/v1/users/${user}/password`, { body: { password: 'pw2' } });
    expect(changed.status).toBe(204);
    expect((await a.call('DELETE', `/api/v1/users/${user}`)).status).toBe(204);
  });

  it('answers a path that is not valid percent-encoding with the API error body', async () => {
    for (const path of ['/api/v1/topics/%ZZ', '/api/v1/users/%']) {
      const answer = await a.call('DELETE', path);
      expect(answer.status, path).toBe(400);
      expect(answer.body, path).toEqual({ error: { code: 'INVALID_ARGUMENT', message: expect.any(String) } });
    }
  });
});

describe('topic settings the node refuses', () => {
  it('leave an altered topic as it was, naming the field', async () => {
    expect((await a.call('POST', '/api/v1/topics', { body: { name: 'limits' } })).status).toBe(201);
    const before = (await a.call('GET', '/api/v1/topics/limits')).body;
    // Over the journal's 1 GiB batch limit: refused by the storage, not by the request schema.
    const huge = await a.call('PATCH', '/api/v1/topics/limits', {
      body: { retentionMs: 1000, configs: { 'max.message.bytes': String(2 ** 31) } },
    });
    expect(huge).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_ARGUMENT', field: 'configs.max.message.bytes' } },
    });
    expect((await a.call('GET', '/api/v1/topics/limits')).body).toEqual(before);
    const stored = await a.node.context!.storage.shardInfo('limits/0');
    expect(stored.config.retentionMs).toBe(before.retentionMs);

    const created = await a.call('POST', '/api/v1/topics', {
      body: { name: 'limits-2', configs: { 'max.message.bytes': String(2 ** 31) } },
    });
    expect(created.body.error).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'configs.max.message.bytes',
    });
    expect((await a.call('GET', '/api/v1/topics/limits-2')).status).toBe(404);
  });

  it('name partitions when a topic would have more than the node allows', async () => {
    const created = await a.call('POST', '/api/v1/topics', { body: { name: 'wide', partitions: 20_000 } });
    expect(created.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'partitions' });
    expect((await a.call('POST', '/api/v1/topics', { body: { name: 'wide' } })).status).toBe(201);
    const grown = await a.call('PATCH', '/api/v1/topics/wide', { body: { partitions: 20_000 } });
    expect(grown.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'partitions' });
    expect((await a.call('GET', '/api/v1/topics/wide')).body.partitions).toBe(1);
  });
});

describe('tokens', () => {
  it("stop working when their user's password changes", async () => {
    await a.call('POST', '/api/v1/users', { body: { name: 'ops', password: 'pw-old', superuser: true } });
    const token = await a.login('ops', 'pw-old');
    expect((await a.call('GET', '/api/v1/cluster', { token })).status).toBe(200);
    expect((await a.call('PUT', '/api/v1/users/ops/password', { body: { password: 'pw-new' } })).status).toBe(
      204,
    );
    const stale = await a.call('GET', '/api/v1/cluster', { token });
    expect(stale).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHENTICATED' } } });
    const fresh = await a.login('ops', 'pw-new');
    expect((await a.call('GET', '/api/v1/cluster', { token: fresh })).status).toBe(200);
    expect((await a.call('DELETE', '/api/v1/users/ops')).status).toBe(204);
  });

  it('of a deleted user do not come back when a user of that name is made again', async () => {
    await a.call('POST', '/api/v1/users', { body: { name: 'temp', password: 'pw-1', superuser: true } });
    const token = await a.login('temp', 'pw-1');
    expect((await a.call('DELETE', '/api/v1/users/temp')).status).toBe(204);
    await a.call('POST', '/api/v1/users', { body: { name: 'temp', password: 'pw-2', superuser: true } });
    expect((await a.call('GET', '/api/v1/cluster', { token })).status).toBe(401);
    expect((await a.call('DELETE', '/api/v1/users/temp')).status).toBe(204);
  });
});

describe('the last superuser', () => {
  it('is kept when two superusers are deleted at once', async () => {
    await a.call('POST', '/api/v1/users', { body: { name: 'second', password: 'pw', superuser: true } });
    const answers = await Promise.all([
      a.call('DELETE', '/api/v1/users/second'),
      a.call('DELETE', '/api/v1/users/admin'),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([204, 409]);
    const left = (await a.node.users!.list()).filter((u) => u.superuser);
    expect(left).toHaveLength(1);
    if (left[0]!.name === 'second') {
      // The bootstrap admin went; put it back so that the other tests can log in as it.
      const token = await a.login('second', 'pw');
      await a.call('POST', '/api/v1/users', {
        body: { name: 'admin', password: 'admin-secret-for-tests', superuser: true },
        token,
      });
      await a.call('DELETE', '/api/v1/users/second', { token });
    }
  });
});
