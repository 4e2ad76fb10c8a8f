import type { AdminResource } from '@robustmq/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Packet } from '../src/codec/index.js';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { startInProcess } from './helpers/in-process.js';
import { RawClient } from './helpers/raw-client.js';

let broker: Awaited<ReturnType<typeof startInProcess>>;
let clients: MqttClient[] = [];
let resources: Readonly<Record<string, AdminResource>>;

beforeEach(async () => {
  // No $SYS topics: the retained list holds only what the tests publish.
  broker = await startInProcess({ sys_interval_seconds: 0 });
  resources = broker.plugin.adminResources();
});
afterEach(async () => {
  await endAll(clients);
  clients = [];
  await broker.stop();
});

async function client(clientId: string, options = {}): Promise<MqttClient> {
  const c = await connectClient(broker.port, { protocolVersion: 5, clientId, ...options });
  clients.push(c);
  return c;
}

/** Every id of a resource, read page by page. */
async function allIds(resource: AdminResource, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await resource.list({ limit, ...(after === undefined ? {} : { after }) });
    ids.push(...page.items.map((i) => i.id));
    if (page.next === null) return ids;
    expect(page.items).toHaveLength(limit);
    after = page.next;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('admin resources of the MQTT plugin', () => {
  it('clients: lists connected clients in id order, pages through them, kicks with 0x98', async () => {
    await client('c-b', { username: 'alice', password: 'secret-pw', keepalive: 42 });
    const v4 = await connectClient(broker.port, { protocolVersion: 4, clientId: 'c-a' });
    clients.push(v4);
    const c = await client('c-c');
    await c.subscribeAsync(['t/1', 't/2'], { qos: 1 });

    expect(await allIds(resources.clients!, 2)).toEqual(['c-a', 'c-b', 'c-c']);
    expect(await allIds(resources.clients!, 1)).toEqual(['c-a', 'c-b', 'c-c']);
    expect(await resources.clients!.list({ limit: 10, after: 'c-b' })).toMatchObject({
      items: [{ id: 'c-c' }],
      next: null,
    });
    expect(await resources.clients!.get('c-b')).toMatchObject({
      id: 'c-b',
      protocolVersion: '5.0',
      username: 'alice',
      remoteAddress: '127.0.0.1',
      listener: 'tcp',
      keepAlive: 42,
      subscriptions: 0,
      inflight: 0,
      queued: 0,
    });
    expect(await resources.clients!.get('c-a')).toMatchObject({ protocolVersion: '3.1.1', username: null });
    expect(await resources.clients!.get('c-c')).toMatchObject({ subscriptions: 2 });
    expect(typeof (await resources.clients!.get('c-c'))!.connectedAt).toBe('string');
    expect(await resources.clients!.get('nobody')).toBeNull();

    const disconnected = new Promise<Packet>((resolve) => c.once('disconnect', (p) => resolve(p as Packet)));
    expect(await resources.clients!.remove!('c-c')).toBe(true);
    expect(await disconnected).toMatchObject({ reasonCode: 0x98 });
    expect(await resources.clients!.remove!('c-c')).toBe(false);
    expect(await allIds(resources.clients!, 10)).toEqual(['c-a', 'c-b']);
  });

  it('sessions: shows live and offline persistent sessions; removing one deletes it', async () => {
    const topic = 'admin/sessions';
    const away = await client('s-away', { clean: false, properties: { sessionExpiryInterval: 600 } });
    await away.subscribeAsync(topic, { qos: 1 });
    await away.endAsync();
    await client('s-live');
    const publisher = await client('s-pub');
    await publisher.publishAsync(topic, 'queued', { qos: 1 });

    expect(await allIds(resources.sessions!, 2)).toEqual(['s-away', 's-live', 's-pub']);
    const offline = await resources.sessions!.get('s-away');
    expect(offline).toMatchObject({
      connected: false,
      persistent: true,
      expiryInterval: 600,
      subscriptions: 1,
      queued: 1,
    });
    expect(Date.parse(offline!.expiresAt as string) - Date.parse(offline!.disconnectedAt as string)).toBe(
      600_000,
    );
    expect(await resources.sessions!.get('s-live')).toMatchObject({
      connected: true,
      persistent: false,
      expiresAt: null,
    });

    expect(await resources.sessions!.remove!('s-away')).toBe(true);
    expect(await resources.sessions!.get('s-away')).toBeNull();
    // The client comes back to no session and nothing queued.
    const back = await connectClient(broker.port, {
      protocolVersion: 5,
      clientId: 's-away',
      clean: false,
      properties: { sessionExpiryInterval: 600 },
    });
    clients.push(back);
    const inbox = new Inbox(back);
    expect(await inbox.settle(300)).toHaveLength(0);

    // Removing the session of a connected client disconnects it (0x98).
    const live = await RawClient.connected(broker.port, 5, 's-raw');
    expect(await resources.sessions!.remove!('s-raw')).toBe(true);
    expect(await live.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x98 });
    expect(await resources.sessions!.get('s-raw')).toBeNull();
    expect(await resources.sessions!.remove!('s-raw')).toBe(false);
  });

  it('subscriptions: one item per client and filter, with options and share group; remove unsubscribes', async () => {
    const sub = await client('sub one');
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('plain/#', { qos: 1, nl: true, properties: { subscriptionIdentifier: 7 } });
    await sub.subscribeAsync('$share/g1/jobs/+', { qos: 2 });
    const other = await client('sub-two');
    await other.subscribeAsync('$exclusive/lock', { qos: 0 });

    const ids = await allIds(resources.subscriptions!, 2);
    expect(ids).toEqual(['sub one $share/g1/jobs/+', 'sub one plain/#', 'sub-two $exclusive/lock']);
    expect(await resources.subscriptions!.get('sub one plain/#')).toMatchObject({
      clientId: 'sub one',
      filter: 'plain/#',
      qos: 1,
      noLocal: true,
      subscriptionIdentifier: 7,
      shareGroup: null,
    });
    expect(await resources.subscriptions!.get('sub one $share/g1/jobs/+')).toMatchObject({
      shareGroup: 'g1',
      topicFilter: 'jobs/+',
      qos: 2,
    });
    expect(await resources.subscriptions!.get('sub-two $exclusive/lock')).toMatchObject({ exclusive: true });
    expect(await resources.subscriptions!.get('sub one nothing')).toBeNull();

    expect(await resources.subscriptions!.remove!('sub one plain/#')).toBe(true);
    const publisher = await client('pub');
    await publisher.publishAsync('plain/x', 'after removal', { qos: 1 });
    await publisher.publishAsync('jobs/1', 'job', { qos: 1 });
    expect((await inbox.at(0)).topic).toBe('jobs/1');
    await sleep(200);
    expect(inbox.messages).toHaveLength(1);
    expect(await resources.subscriptions!.remove!('sub one plain/#')).toBe(false);
  });

  it('retained: lists retained messages by topic; remove deletes one', async () => {
    const publisher = await client('ret-pub');
    for (const topic of ['r/b', 'r/a', 'r/c']) {
      await publisher.publishAsync(topic, `value of ${topic}`, { qos: 1, retain: true });
    }
    expect(await allIds(resources.retained!, 2)).toEqual(['r/a', 'r/b', 'r/c']);
    const item = await resources.retained!.get('r/a');
    expect(item).toMatchObject({
      topic: 'r/a',
      payloadBytes: 'value of r/a'.length,
      qos: 1,
      publisherId: 'ret-pub',
    });
    expect(Number.isNaN(Date.parse(item!.storedAt as string))).toBe(false);

    expect(await resources.retained!.remove!('r/a')).toBe(true);
    expect(await resources.retained!.remove!('r/a')).toBe(false);
    expect(await resources.retained!.get('r/a')).toBeNull();
    const sub = await client('ret-sub');
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('r/#', { qos: 1 });
    const got = await inbox.waitFor(2);
    expect(got.map((m) => m.topic).sort()).toEqual(['r/b', 'r/c']);
    expect(await inbox.settle(200)).toHaveLength(2);
  });
});
