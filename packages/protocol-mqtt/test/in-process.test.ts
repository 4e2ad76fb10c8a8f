import type { Message, MessageOrigin } from '@robustmq/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { startInProcess } from './helpers/in-process.js';
import { RawClient } from './helpers/raw-client.js';
import type { Packet } from '../src/codec/index.js';

let broker: Awaited<ReturnType<typeof startInProcess>>;
let clients: MqttClient[] = [];

beforeEach(async () => {
  broker = await startInProcess();
});
afterEach(async () => {
  await endAll(clients);
  clients = [];
  await broker.stop();
});

async function client(protocolVersion: 4 | 5, options = {}): Promise<MqttClient> {
  const c = await connectClient(broker.port, { protocolVersion, ...options });
  clients.push(c);
  return c;
}

describe('authentication and authorization through the context', () => {
  it('lets a known user in and refuses a wrong password', async () => {
    const alice = await client(5, { username: 'alice', password: 'secret-pw' });
    expect(alice.connected).toBe(true);
    for (const [version, code] of [
      [4, 4],
      [5, 0x86],
    ] as const) {
      const error = await connectClient(broker.port, {
        protocolVersion: version,
        username: 'alice',
        password: 'nope',
      }).catch((e: unknown) => e as { code: number });
      expect(error).toMatchObject({ code });
    }
    expect(broker.metrics.get('robustmq_mqtt_connections_refused_total', { reason: 'bad_credentials' })).toBe(
      2,
    );
  });

  it('refuses publishing to a forbidden topic: MQTT 5 says 0x87, MQTT 3 drops silently', async () => {
    const watcher = await client(4);
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync('#');
    const v5 = await RawClient.connected(broker.port, 5, 'v5-pub');
    v5.send({
      cmd: 'publish',
      topic: 'secret/a',
      payload: Buffer.from('x'),
      qos: 1,
      messageId: 1,
      dup: false,
      retain: false,
    });
    expect(await v5.next()).toMatchObject({ cmd: 'puback', messageId: 1, reasonCode: 0x87 });
    v5.send({
      cmd: 'publish',
      topic: 'secret/a',
      payload: Buffer.from('x'),
      qos: 2,
      messageId: 2,
      dup: false,
      retain: false,
    });
    expect(await v5.next()).toMatchObject({ cmd: 'pubrec', messageId: 2, reasonCode: 0x87 });
    const v3 = await client(4);
    await v3.publishAsync('secret/b', 'y', { qos: 1 });
    await v3.publishAsync('public/b', 'z', { qos: 1 });
    expect((await inbox.waitFor(1)).map((m) => m.topic)).toEqual(['public/b']);
    expect(await inbox.settle(200)).toHaveLength(1);
    v5.close();
  });

  it('refuses subscribing to a forbidden filter in SUBACK', async () => {
    for (const [version, code] of [
      [4, 0x80],
      [5, 0x87],
    ] as const) {
      const c = await RawClient.connected(broker.port, version, `sub${version}`);
      c.send({
        cmd: 'subscribe',
        messageId: 4,
        subscriptions: [
          { topic: 'secret/#', qos: 1 },
          { topic: 'open/#', qos: 1 },
        ],
      });
      expect(await c.next()).toMatchObject({ cmd: 'suback', granted: [code, 1] });
      c.close();
    }
  });

  it('keeps order while the authorizer is asked asynchronously', async () => {
    const sub = await client(4);
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('order/#', { qos: 1 });
    const pub = await client(4);
    // Every topic is new, so each publish waits on the authorizer before routing.
    for (let i = 0; i < 50; i++) pub.publish(`order/${i}`, String(i), { qos: 0 });
    const got = await inbox.waitFor(50);
    expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });
});

describe('the router: MQTT and other protocols', () => {
  it('publishes MQTT messages to the router with user properties as headers', async () => {
    const seen: Array<[Message, MessageOrigin]> = [];
    const other = broker.router.subscribe('bridge/#', (m, o) => seen.push([m, o]));
    const pub = await client(5, { clientId: 'publisher-1' });
    await pub.publishAsync('bridge/x', 'hello', { qos: 1, properties: { userProperties: { k: 'v' } } });
    other.unsubscribe();
    expect(seen).toHaveLength(1);
    const [message, origin] = seen[0]!;
    expect(origin).toEqual({ protocol: 'mqtt', clientId: 'publisher-1' });
    expect(message.topic).toBe('bridge/x');
    expect(Buffer.from(message.payload).toString()).toBe('hello');
    expect(message.headers.map((h) => [h.key, Buffer.from(h.value).toString()])).toEqual([['k', 'v']]);
  });

  it('hands MQTT messages to the router only while something besides MQTT subscribes there', async () => {
    const router = broker.router;
    const publish = router.publish.bind(router);
    let handed = 0;
    router.publish = (message, origin) => {
      if (origin.protocol === 'mqtt') handed++;
      return publish(message, origin);
    };
    try {
      const sub = await client(4);
      const inbox = new Inbox(sub);
      await sub.subscribeAsync('alone/#', { qos: 1 });
      const pub = await client(4);
      await pub.publishAsync('alone/1', 'mqtt only', { qos: 1 });
      await inbox.waitFor(1);
      expect(handed).toBe(0);

      const seen: string[] = [];
      const other = router.subscribe('alone/#', (m) => seen.push(Buffer.from(m.payload).toString()));
      await pub.publishAsync('alone/2', 'seen by another protocol', { qos: 1 });
      other.unsubscribe();
      await pub.publishAsync('alone/3', 'mqtt only again', { qos: 1 });
      expect((await inbox.waitFor(3)).map((m) => m.payload)).toEqual([
        'mqtt only',
        'seen by another protocol',
        'mqtt only again',
      ]);
      expect(seen).toEqual(['seen by another protocol']);
      expect(handed).toBe(1);
    } finally {
      router.publish = publish;
    }
  });

  it('delivers messages other protocols publish to MQTT subscribers, once, including $ topics', async () => {
    const sub = await client(5);
    const inbox = new Inbox(sub);
    await sub.subscribeAsync({ 'kafka/#': { qos: 1 }, 'kafka/+': { qos: 2 }, '$events/#': { qos: 0 } });
    const message = (topic: string): Message => ({
      topic,
      key: null,
      payload: Buffer.from(`from ${topic}`),
      headers: [{ key: 'source', value: Buffer.from('kafka') }],
      timestamp: Date.now(),
    });
    broker.router.publish(message('kafka/orders'), { protocol: 'kafka' });
    broker.router.publish(message('$events/created'), { protocol: 'amqp' });
    broker.router.publish(message('kafka/ignored'), { protocol: 'mqtt', clientId: 'x' });
    const got = await inbox.waitFor(2);
    expect(got.map((m) => [m.topic, m.payload, m.packet.qos])).toEqual([
      ['kafka/orders', 'from kafka/orders', 1],
      ['$events/created', 'from $events/created', 0],
    ]);
    expect(got[0]!.packet.properties?.userProperties).toEqual({ source: 'kafka' });
    expect(await inbox.settle(200)).toHaveLength(2);
    await sub.unsubscribeAsync('$events/#');
    expect([...broker.router.subscriptions].map((s) => s.filter)).toEqual(['#']);
  });
});

describe('sessions that end', () => {
  /** Client ids whose stored session state the broker still holds in memory. */
  function sessionLogs(): number {
    const internals = broker.plugin as unknown as { broker: { persistence: { logs: Map<string, unknown> } } };
    return internals.broker.persistence.logs.size;
  }

  it('are forgotten once their stored state is deleted: expired, cleaned or made non-persistent', async () => {
    const before = sessionLogs();
    for (let i = 0; i < 10; i++) {
      const expiring = await connectClient(broker.port, {
        protocolVersion: 5,
        clientId: `expiring-${i}`,
        properties: { sessionExpiryInterval: 1 },
      });
      await expiring.subscribeAsync('ends/a', { qos: 1 });
      await expiring.endAsync();
      const persistent = await connectClient(broker.port, {
        protocolVersion: 4,
        clientId: `kept-${i}`,
        clean: false,
      });
      await persistent.subscribeAsync('ends/b', { qos: 1 });
      await persistent.endAsync();
      // Back with a clean session: the stored one ends.
      await (
        await connectClient(broker.port, { protocolVersion: 4, clientId: `kept-${i}`, clean: true })
      ).endAsync();
      const dropping = await connectClient(broker.port, {
        protocolVersion: 5,
        clientId: `dropping-${i}`,
        properties: { sessionExpiryInterval: 60 },
      });
      // Its DISCONNECT sets the expiry to 0: the session is not kept.
      await dropping.endAsync(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    }
    expect(sessionLogs()).toBeGreaterThan(before);
    await expect.poll(sessionLogs, { timeout: 5000, interval: 100 }).toBe(before);
  });
});

describe('stopping', () => {
  it('tells MQTT 5 clients the server is shutting down', async () => {
    const c = await RawClient.connected(broker.port, 5, 'until-the-end');
    await broker.plugin.stop();
    expect(await c.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x8b });
    expect(await c.closesWithin(3000)).toBe(true);
  });
});

describe('response information', () => {
  it('follows the response_information setting, and an empty one sends none', async () => {
    for (const [setting, expected] of [
      ['replies/{clientId}', 'replies/asker'],
      ['', undefined],
    ] as const) {
      const own = await startInProcess({ response_information: setting });
      try {
        const raw = await RawClient.open(own.port, 5);
        raw.send({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 5,
          clientId: 'asker',
          clean: true,
          keepalive: 30,
          properties: { requestResponseInformation: true },
        });
        const connack = (await raw.next()) as Extract<Packet, { cmd: 'connack' }>;
        expect(connack.properties?.responseInformation).toBe(expected);
        raw.close();
      } finally {
        await own.stop();
      }
    }
  });
});
