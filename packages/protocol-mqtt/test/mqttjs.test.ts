import type { IClientOptions } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, connectWithInbox, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { startServer, type MqttServer } from './helpers/server.js';

let server: MqttServer;
let clients: MqttClient[] = [];
let seq = 0;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});
afterEach(async () => {
  await endAll(clients);
  clients = [];
});

/** Runs each case with MQTT.js speaking 3.1.1 and 5. */
describe.each([
  { name: 'MQTT 3.1.1', protocolVersion: 4 as const },
  { name: 'MQTT 5', protocolVersion: 5 as const },
])('MQTT.js, $name', ({ protocolVersion }) => {
  const unique = (what: string) => `${what}-${protocolVersion}-${++seq}`;

  async function client(options: IClientOptions = {}): Promise<MqttClient> {
    const c = await connectClient(server.port, { protocolVersion, clientId: unique('c'), ...options });
    clients.push(c);
    return c;
  }

  it('publishes and subscribes with QoS 0, 1 and 2, at the lower of the two QoS', async () => {
    const topic = unique('qos');
    const sub = await client();
    const inbox = new Inbox(sub);
    const granted = await sub.subscribeAsync(`${topic}/#`, { qos: 1 });
    expect(granted[0]!.qos).toBe(1);
    const pub = await client();
    await pub.publishAsync(`${topic}/0`, 'zero', { qos: 0 });
    await pub.publishAsync(`${topic}/1`, 'one', { qos: 1 });
    await pub.publishAsync(`${topic}/2`, 'two', { qos: 2 });
    const got = await inbox.waitFor(3);
    expect(got.map((m) => [m.topic, m.payload, m.packet.qos])).toEqual([
      [`${topic}/0`, 'zero', 0],
      [`${topic}/1`, 'one', 1],
      [`${topic}/2`, 'two', 1],
    ]);
  });

  it('delivers QoS 2 end to end exactly once', async () => {
    const topic = unique('exactly');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic, { qos: 2 });
    const pub = await client();
    for (let i = 0; i < 20; i++) await pub.publishAsync(topic, `m${i}`, { qos: 2 });
    const got = await inbox.waitFor(20);
    expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(got.every((m) => m.packet.qos === 2)).toBe(true);
    expect(await inbox.settle(200)).toHaveLength(20);
  });

  it('keeps publish order per topic for a burst of QoS 1 messages', async () => {
    const topic = unique('order');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic, { qos: 1 });
    const pub = await client();
    await Promise.all(Array.from({ length: 500 }, (_, i) => pub.publishAsync(topic, String(i), { qos: 1 })));
    const got = await inbox.waitFor(500);
    expect(got.map((m) => Number(m.payload))).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });

  it('matches + and #, but not $ topics with a leading wildcard', async () => {
    const base = unique('wild');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync([`${base}/+/temp`, `$${base}/#`]);
    const all = await client();
    const allInbox = new Inbox(all);
    await all.subscribeAsync('#');
    const pub = await client();
    await pub.publishAsync(`${base}/kitchen/temp`, 'a');
    await pub.publishAsync(`${base}/kitchen/humidity`, 'b');
    await pub.publishAsync(`$${base}/x`, 'c');
    const got = await inbox.waitFor(2);
    expect(got.map((m) => m.topic).sort()).toEqual([`$${base}/x`, `${base}/kitchen/temp`].sort());
    const seen = (await allInbox.settle(300)).map((m) => m.topic);
    expect(seen).toContain(`${base}/kitchen/humidity`);
    expect(seen).not.toContain(`$${base}/x`);
  });

  it('delivers once at the highest QoS when subscriptions overlap', async () => {
    const topic = unique('overlap');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync({
      [`${topic}/#`]: { qos: 0 },
      [`${topic}/+`]: { qos: 2 },
      [`${topic}/x`]: { qos: 1 },
    });
    const pub = await client();
    await pub.publishAsync(`${topic}/x`, 'once', { qos: 2 });
    await inbox.waitFor(1);
    const got = await inbox.settle(300);
    expect(got).toHaveLength(1);
    expect(got[0]!.packet.qos).toBe(2);
  });

  it('stores, replaces and deletes retained messages, and sends them on subscribe', async () => {
    const topic = unique('retain');
    const pub = await client();
    await pub.publishAsync(`${topic}/a`, 'first', { qos: 1, retain: true });
    await pub.publishAsync(`${topic}/a`, 'second', { qos: 1, retain: true });
    await pub.publishAsync(`${topic}/b`, 'gone', { qos: 1, retain: true });
    await pub.publishAsync(`${topic}/b`, '', { qos: 1, retain: true });

    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(`${topic}/#`, { qos: 1 });
    const first = await inbox.at(0);
    expect([first.topic, first.payload, first.packet.retain]).toEqual([`${topic}/a`, 'second', true]);
    // Live delivery of a retained publish clears RETAIN (MQTT 3.1.1 3.3.1-9, MQTT 5 without RAP).
    await pub.publishAsync(`${topic}/a`, 'live', { qos: 1, retain: true });
    const live = await inbox.at(1);
    expect([live.payload, live.packet.retain]).toEqual(['live', false]);
    expect(await inbox.settle(200)).toHaveLength(2);
  });

  it('stops delivering after UNSUBSCRIBE', async () => {
    const topic = unique('unsub');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic);
    const pub = await client();
    await pub.publishAsync(topic, 'before', { qos: 1 });
    await inbox.waitFor(1);
    await sub.unsubscribeAsync(topic);
    await pub.publishAsync(topic, 'after', { qos: 1 });
    expect((await inbox.settle(300)).map((m) => m.payload)).toEqual(['before']);
  });

  it('keeps a persistent session: subscriptions and queued QoS 1/2 messages, not QoS 0', async () => {
    const topic = unique('persist');
    const clientId = unique('persistent');
    const persistent: IClientOptions =
      protocolVersion === 5
        ? { clientId, clean: false, properties: { sessionExpiryInterval: 300 } }
        : { clientId, clean: false };
    const first = await client(persistent);
    await first.subscribeAsync(topic, { qos: 2 });
    await first.endAsync();

    const pub = await client();
    await pub.publishAsync(topic, 'q0', { qos: 0 });
    await pub.publishAsync(topic, 'q1', { qos: 1 });
    await pub.publishAsync(topic, 'q2', { qos: 2 });

    const {
      client: again,
      inbox,
      connack,
    } = await connectWithInbox(server.port, { protocolVersion, ...persistent });
    clients.push(again);
    expect(connack.sessionPresent).toBe(true);
    const got = await inbox.waitFor(2);
    expect(got.map((m) => [m.payload, m.packet.qos])).toEqual([
      ['q1', 1],
      ['q2', 2],
    ]);
    expect(await inbox.settle(200)).toHaveLength(2);
  });

  it('reports the session as present on reconnect, and not after a clean start', async () => {
    const clientId = unique('present');
    const keep: IClientOptions =
      protocolVersion === 5
        ? { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }
        : { clientId, clean: false };
    const a = await client(keep);
    await a.subscribeAsync(unique('t'));
    await a.endAsync();
    const resumed = await connectWithInbox(server.port, { protocolVersion, ...keep });
    clients.push(resumed.client);
    expect(resumed.connack.sessionPresent).toBe(true);
    await resumed.client.endAsync();
    const fresh = await connectWithInbox(server.port, { protocolVersion, clientId, clean: true });
    clients.push(fresh.client);
    expect(fresh.connack.sessionPresent).toBe(false);
  });

  it('takes over a session: a second connection with the same client id closes the first', async () => {
    const clientId = unique('takeover');
    const first = await client({ clientId });
    const disconnect = new Promise<number | undefined>((resolve) =>
      first.on('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    const closed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    const second = await client({ clientId });
    await closed;
    if (protocolVersion === 5) expect(await disconnect).toBe(0x8e);
    expect(second.connected).toBe(true);
  });

  it('publishes the will on network loss, not on a clean DISCONNECT', async () => {
    const topic = unique('will');
    const watcher = await client();
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(`${topic}/#`, { qos: 1 });

    const polite = await client({
      will: { topic: `${topic}/polite`, payload: Buffer.from('bye'), qos: 1, retain: false },
    });
    await polite.endAsync();
    const rude = await client({
      will: { topic: `${topic}/rude`, payload: Buffer.from('lost'), qos: 1, retain: false },
    });
    rude.stream.destroy();
    const got = await inbox.at(0);
    expect([got.topic, got.payload]).toEqual([`${topic}/rude`, 'lost']);
    expect(await inbox.settle(300)).toHaveLength(1);
  });

  it('refuses bad credentials', async () => {
    const error = await connectClient(server.port, {
      protocolVersion,
      clientId: unique('bad'),
      username: 'nobody',
      password: 'wrong',
    }).catch((e: unknown) => e as { code?: number });
    expect(error).toMatchObject({ code: protocolVersion === 5 ? 0x86 : 4 });
  });
});
