import type { IClientOptions } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, connectWithInbox, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { startServer, type MqttServer } from './helpers/server.js';

let server: MqttServer;
let clients: MqttClient[] = [];
let seq = 0;
const unique = (what: string) => `${what}-${++seq}`;

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

async function client(options: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectClient(server.port, { protocolVersion: 5, clientId: unique('c'), ...options });
  clients.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MQTT 5 with MQTT.js', () => {
  it('passes user properties, content type, response topic, correlation data and payload format through', async () => {
    const topic = unique('props');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic, { qos: 1 });
    const v3 = await connectClient(server.port, { protocolVersion: 4, clientId: unique('v3') });
    clients.push(v3);
    const v3Inbox = new Inbox(v3);
    await v3.subscribeAsync(topic, { qos: 1 });
    const pub = await client();
    await pub.publishAsync(topic, '{"t":21}', {
      qos: 1,
      properties: {
        userProperties: { site: 'north', tag: ['a', 'b'] },
        contentType: 'application/json',
        responseTopic: `${topic}/reply`,
        correlationData: Buffer.from('req-1'),
        payloadFormatIndicator: true,
      },
    });
    const got = await inbox.at(0);
    expect(got.payload).toBe('{"t":21}');
    expect(got.packet.properties).toMatchObject({
      userProperties: { site: 'north', tag: ['a', 'b'] },
      contentType: 'application/json',
      responseTopic: `${topic}/reply`,
      payloadFormatIndicator: true,
    });
    expect(Buffer.from(got.packet.properties!.correlationData!).toString()).toBe('req-1');
    expect((await v3Inbox.at(0)).payload).toBe('{"t":21}');
  });

  it('supports request/response through response topic and correlation data', async () => {
    const service = unique('service');
    const responder = await client();
    responder.on('message', (_topic, payload, packet) => {
      const { responseTopic, correlationData } = packet.properties ?? {};
      if (responseTopic)
        responder
          .publishAsync(responseTopic, `echo:${payload.toString()}`, {
            qos: 1,
            properties: correlationData ? { correlationData } : {},
          })
          .catch(() => undefined); // the test may end the client before the PUBACK
    });
    await responder.subscribeAsync(service, { qos: 1 });
    const requester = await client();
    const inbox = new Inbox(requester);
    await requester.subscribeAsync(`${service}/replies`, { qos: 1 });
    await requester.publishAsync(service, 'ping', {
      qos: 1,
      properties: { responseTopic: `${service}/replies`, correlationData: Buffer.from('42') },
    });
    const reply = await inbox.at(0);
    expect(reply.payload).toBe('echo:ping');
    expect(Buffer.from(reply.packet.properties!.correlationData!).toString()).toBe('42');
  });

  it('does not send a client its own messages on a no-local subscription', async () => {
    const topic = unique('nolocal');
    const me = await client();
    const inbox = new Inbox(me);
    await me.subscribeAsync(topic, { qos: 1, nl: true });
    await me.publishAsync(topic, 'mine', { qos: 1 });
    const other = await client();
    await other.publishAsync(topic, 'theirs', { qos: 1 });
    await inbox.waitFor(1);
    expect((await inbox.settle(200)).map((m) => m.payload)).toEqual(['theirs']);
  });

  it('keeps RETAIN on live delivery with retain-as-published', async () => {
    const topic = unique('rap');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic, { qos: 1, rap: true });
    const pub = await client();
    await pub.publishAsync(topic, 'r', { qos: 1, retain: true });
    await pub.publishAsync(topic, 'n', { qos: 1, retain: false });
    const got = await inbox.waitFor(2);
    expect(got.map((m) => [m.payload, m.packet.retain])).toEqual([
      ['r', true],
      ['n', false],
    ]);
  });

  it('sends retained messages per retain handling: 0 always, 1 only for a new subscription, 2 never', async () => {
    const topic = unique('rh');
    const pub = await client();
    await pub.publishAsync(topic, 'kept', { qos: 1, retain: true });
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic, { qos: 1, rh: 0 });
    await sub.subscribeAsync(topic, { qos: 1, rh: 0 });
    await inbox.waitFor(2);
    await sub.subscribeAsync(topic, { qos: 1, rh: 1 });
    await sub.unsubscribeAsync(topic);
    await sub.subscribeAsync(topic, { qos: 1, rh: 1 });
    await inbox.waitFor(3);
    await sub.unsubscribeAsync(topic);
    await sub.subscribeAsync(topic, { qos: 1, rh: 2 });
    expect(await inbox.settle(300)).toHaveLength(3);
  });

  it('tags deliveries with subscription identifiers, all of them when subscriptions overlap', async () => {
    const topic = unique('subid');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(`${topic}/+`, { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await sub.subscribeAsync(`${topic}/#`, { qos: 0, properties: { subscriptionIdentifier: 9 } });
    await sub.subscribeAsync(`${topic}/x/y`, { qos: 0 });
    const pub = await client();
    await pub.publishAsync(`${topic}/x`, 'both', { qos: 1 });
    await pub.publishAsync(`${topic}/x/y`, 'deep', { qos: 1 });
    const got = await inbox.waitFor(2);
    const ids = (i: number) => [got[i]!.packet.properties?.subscriptionIdentifier].flat().sort();
    expect(got[0]!.packet.qos).toBe(1);
    expect(ids(0)).toEqual([7, 9]);
    expect(ids(1)).toEqual([9]);
  });

  it('resolves topic aliases the client sets', async () => {
    const topic = unique('alias');
    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic);
    const pub = await client();
    await pub.publishAsync(topic, 'set', { qos: 1, properties: { topicAlias: 3 } });
    await pub.publishAsync('', 'used', { qos: 1, properties: { topicAlias: 3 } });
    const got = await inbox.waitFor(2);
    expect(got.map((m) => [m.topic, m.payload])).toEqual([
      [topic, 'set'],
      [topic, 'used'],
    ]);
  });

  it('assigns a client id when the client sends none', async () => {
    const { client: c, connack } = await connectWithInbox(server.port, { protocolVersion: 5, clientId: '' });
    clients.push(c);
    expect(connack.properties?.assignedClientIdentifier).toMatch(/^auto-/);
    expect(connack.properties?.maximumPacketSize).toBe(1_048_576);
  });

  it('expires retained and queued messages past their message expiry interval', async () => {
    const topic = unique('expiry');
    const pub = await client();
    await pub.publishAsync(`${topic}/short`, 'short', {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 1 },
    });
    await pub.publishAsync(`${topic}/long`, 'long', {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 100 },
    });

    const clientId = unique('expiring-session');
    const persistent: IClientOptions = { clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
    const offline = await client(persistent);
    await offline.subscribeAsync(`${topic}/queued`, { qos: 1, rh: 2 });
    await offline.endAsync();
    await pub.publishAsync(`${topic}/queued`, 'stale', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync(`${topic}/queued`, 'fresh', {
      qos: 1,
      properties: { messageExpiryInterval: 100 },
    });
    await sleep(1300);

    const sub = await client();
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(`${topic}/+`, { qos: 1 });
    const retained = await inbox.at(0);
    expect(retained.payload).toBe('long');
    const remaining = retained.packet.properties!.messageExpiryInterval!;
    expect(remaining).toBeLessThanOrEqual(99);
    expect(remaining).toBeGreaterThan(90);

    const resumed = await connectWithInbox(server.port, { protocolVersion: 5, ...persistent });
    clients.push(resumed.client);
    await resumed.inbox.waitFor(1);
    expect((await resumed.inbox.settle(200)).map((m) => m.payload)).toEqual(['fresh']);
    expect(await inbox.settle(100)).toHaveLength(1);
  });

  it('ends a session once its expiry interval has passed', async () => {
    const clientId = unique('short-session');
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 1 },
    };
    const first = await client(options);
    await first.subscribeAsync(unique('t'));
    await first.endAsync();
    const soon = await connectWithInbox(server.port, options);
    expect(soon.connack.sessionPresent).toBe(true);
    await soon.client.endAsync();
    await sleep(1300);
    const late = await connectWithInbox(server.port, options);
    clients.push(late.client);
    expect(late.connack.sessionPresent).toBe(false);
  });

  it('delays the will by its delay interval, and drops it when the client returns in time', async () => {
    const topic = unique('delayed-will');
    const watcher = await client();
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(`${topic}/#`, { qos: 1 });
    const session = { clean: false, properties: { sessionExpiryInterval: 30 } };
    const will = (name: string) => ({
      topic: `${topic}/${name}`,
      payload: Buffer.from(name),
      qos: 1 as const,
      retain: false,
      properties: { willDelayInterval: 1 },
    });

    const lost = await client({ clientId: unique('lost'), ...session, will: will('lost') });
    const comesBack = unique('back');
    const back = await client({ clientId: comesBack, ...session, will: will('back') });
    const dropped = Date.now();
    lost.stream.destroy();
    back.stream.destroy();
    await sleep(300);
    expect(inbox.messages).toHaveLength(0);
    const returned = await client({ clientId: comesBack, ...session });
    expect(returned.connected).toBe(true);
    const got = await inbox.at(0, 3000);
    expect(got.payload).toBe('lost');
    expect(Date.now() - dropped).toBeGreaterThanOrEqual(900);
    expect(await inbox.settle(800)).toHaveLength(1);
  });

  it('publishes the will on DISCONNECT with reason 0x04', async () => {
    const topic = unique('will-04');
    const watcher = await client();
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(topic, { qos: 1 });
    const leaving = await client({ will: { topic, payload: Buffer.from('asked'), qos: 1, retain: false } });
    await leaving.endAsync(false, { reasonCode: 0x04 });
    expect((await inbox.at(0)).payload).toBe('asked');
  });

  it('sends Response Information only to a client that requests it', async () => {
    const clientId = unique('resp-info');
    const asking = await connectWithInbox(server.port, {
      protocolVersion: 5,
      clientId,
      properties: { requestResponseInformation: true },
    });
    clients.push(asking.client);
    expect(asking.connack.properties?.responseInformation).toBe(`response/${clientId}/`);
    // The prefix is the client's to use for its replies.
    const replies = new Inbox(asking.client);
    await asking.client.subscribeAsync(`response/${clientId}/#`, { qos: 1 });
    const other = await client();
    await other.publishAsync(`response/${clientId}/r1`, 'reply', { qos: 1 });
    expect((await replies.at(0)).payload).toBe('reply');
    const silent = await connectWithInbox(server.port, { protocolVersion: 5, clientId: unique('no-info') });
    clients.push(silent.client);
    expect(silent.connack.properties?.responseInformation).toBeUndefined();
  });
});
