import { fileURLToPath } from 'node:url';
import type { Message } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it } from 'vitest';
import type { IPublishPacket, Packet } from '../src/codec/index.js';
import { sessionKey } from '../src/session-log.js';
import { memoryMeta, startInProcess } from './helpers/in-process.js';
import { run } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';
import { connectPacket, packet, properties, str, userProperty } from './helpers/wire.js';

/**
 * MQTT-3.3.2-18: the server keeps the order of User Properties when it forwards a message, a
 * name repeated among others included, whatever path the message takes: forwarded bytes,
 * re-encoded QoS 1/2, retained, will, delayed, stored across a restart, other protocols.
 */

const SENT: Array<[string, string]> = [
  ['z', '1'],
  ['a', '2'],
  ['z', '3'],
];
/** The three User Properties as they must appear, in this order, in what subscribers get. */
const IN_ORDER = Buffer.concat(SENT.map(([name, value]) => userProperty(name, value)));
const PAHO = fileURLToPath(new URL('./fixtures/paho_client.py', import.meta.url));

let server: MqttServer | null = null;
let stopInProcess: (() => Promise<void>) | null = null;
const raws: RawClient[] = [];
let seq = 0;

afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close();
  await server?.stop();
  server = null;
  await stopInProcess?.();
  stopInProcess = null;
});

/** A PUBLISH with the three User Properties, as raw bytes (mqtt-packet cannot keep their order). */
function orderedPublish(topic: string, qos: 0 | 1 | 2, retain = false, packetId = 1): Buffer {
  const first = 0x30 | (qos << 1) | (retain ? 1 : 0);
  return packet(first, str(topic), qos > 0 ? [0, packetId] : [], properties(IN_ORDER), Buffer.from('m'));
}

async function raw(port: number, clientId: string, extra: Partial<Extract<Packet, { cmd: 'connect' }>> = {}) {
  const client = await RawClient.connected(port, 5, clientId, extra);
  raws.push(client);
  return client;
}

async function subscribe(client: RawClient, topic: string): Promise<void> {
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
  expect((await client.next()).cmd).toBe('suback');
}

/** The next PUBLISH the client gets, acknowledged (QoS 2 completed); returns its topic and bytes. */
async function received(client: RawClient): Promise<{ topic: string; bytes: Buffer }> {
  let [packet, bytes] = await client.nextWithBytes();
  while (packet.cmd === 'pubrel') {
    client.send({ cmd: 'pubcomp', messageId: packet.messageId! });
    [packet, bytes] = await client.nextWithBytes();
  }
  const publish = packet as IPublishPacket;
  expect(publish.cmd).toBe('publish');
  if (publish.qos === 1) client.send({ cmd: 'puback', messageId: publish.messageId! });
  if (publish.qos === 2) client.send({ cmd: 'pubrec', messageId: publish.messageId! });
  return { topic: publish.topic, bytes };
}

async function expectInOrder(client: RawClient, topics: string[]): Promise<void> {
  const got: string[] = [];
  for (let i = 0; i < topics.length; i++) {
    const { topic, bytes } = await received(client);
    expect(bytes.includes(IN_ORDER), `user properties of ${topic} in order`).toBe(true);
    got.push(topic);
  }
  expect(got.sort()).toEqual([...topics].sort());
}

describe('the order of user properties', () => {
  it('is kept at QoS 0, 1 and 2, retained, on subscribe, in wills and in delayed messages', async () => {
    server = await startServer();
    const port = server.port;
    const subscriber = await raw(port, 'order-sub');
    await subscribe(subscriber, 'order/#');
    const publisher = await raw(port, 'order-pub');
    publisher.write(orderedPublish('order/qos0', 0));
    publisher.write(orderedPublish('order/qos0-retained', 0, true));
    publisher.write(orderedPublish('order/qos1', 1, false, 1));
    publisher.write(orderedPublish('order/qos2', 2, false, 2));
    publisher.write(orderedPublish('$delayed/1/order/delayed', 1, false, 3));
    const dying = await RawClient.open(port, 5);
    const will = { topic: 'order/will', qos: 1 as const, properties: properties(IN_ORDER) };
    dying.write(connectPacket(5, 'order-will', { will }));
    expect((await dying.next()).cmd).toBe('connack');
    dying.close();
    await expectInOrder(subscriber, [
      'order/qos0',
      'order/qos0-retained',
      'order/qos1',
      'order/qos2',
      'order/will',
      'order/delayed',
    ]);

    const late = await raw(port, 'order-late');
    await subscribe(late, 'order/qos0-retained');
    await expectInOrder(late, ['order/qos0-retained']);
  });

  it('is kept in what a persistent session, a retained message and a will keep across kill -9', async () => {
    server = await startServer();
    const persistent = { clean: false, properties: { sessionExpiryInterval: 300 } };
    const away = await raw(server.port, 'order-away', persistent);
    await subscribe(away, 'kept/#');
    away.close();
    const publisher = await raw(server.port, 'order-kept-pub');
    publisher.write(orderedPublish('kept/queued', 1, false, 1));
    publisher.write(orderedPublish('kept/retained', 1, true, 2));
    expect(await publisher.next()).toMatchObject({ cmd: 'puback', messageId: 1 });
    expect(await publisher.next()).toMatchObject({ cmd: 'puback', messageId: 2 });
    // Connected when the node dies: its will is published at start (MQTT 5 section 3.1.2.5).
    const doomed = await RawClient.open(server.port, 5);
    raws.push(doomed);
    doomed.write(
      connectPacket(5, 'order-doomed', {
        properties: properties([0x11, 0, 0, 1, 0x2c]),
        will: { topic: 'kept/will', qos: 1, properties: properties(IN_ORDER) },
      }),
    );
    expect((await doomed.next()).cmd).toBe('connack');
    // SUBACK waits for the session record, and so for the will in it, to be durable.
    await subscribe(doomed, 'elsewhere');

    const dir = server.dir;
    await server.kill();
    server = await startServer({ dir });
    const back = await raw(server.port, 'order-away', persistent);
    await expectInOrder(back, ['kept/queued', 'kept/retained', 'kept/will']);
    const late = await raw(server.port, 'order-kept-late');
    await subscribe(late, 'kept/retained');
    await expectInOrder(late, ['kept/retained']);
  });

  it('is kept between Paho Python clients, live, retained and in a will', async () => {
    server = await startServer();
    const topic = `paho-order-${++seq}`;
    const result = await run(
      '/usr/bin/python3',
      [PAHO, String(server.port), '5', 'property_order', topic],
      20_000,
    );
    expect(result.code, result.stderr).toBe(0);
    const { live, retained } = JSON.parse(result.stdout) as {
      live: Array<{ topic: string; user: string[][] }>;
      retained: Array<{ topic: string; user: string[][] }>;
    };
    expect(live.map((m) => m.topic).sort()).toEqual(
      ['0', '1', '2', 'retained', 'will'].map((t) => `${topic}/${t}`),
    );
    for (const message of [...live, ...retained]) expect(message.user).toEqual(SENT);
    expect(retained).toHaveLength(1);
  });

  it('is kept to and from other protocols, as headers in the same order', async () => {
    const broker = await startInProcess();
    stopInProcess = () => broker.stop();
    const seen: Message[] = [];
    broker.router.subscribe('bridge/#', (message) => seen.push(message));
    const publisher = await raw(broker.port, 'order-bridge-pub');
    publisher.write(orderedPublish('bridge/out', 1));
    expect((await publisher.next()).cmd).toBe('puback');
    expect(seen[0]!.headers.map((h) => [h.key, Buffer.from(h.value).toString()])).toEqual(SENT);

    const subscriber = await raw(broker.port, 'order-bridge-sub');
    await subscribe(subscriber, 'kafka/#');
    broker.router.publish(
      {
        topic: 'kafka/in',
        key: null,
        payload: Buffer.from('m'),
        headers: SENT.map(([key, value]) => ({ key, value: Buffer.from(value) })),
        timestamp: Date.now(),
      },
      { protocol: 'kafka' },
    );
    await expectInOrder(subscriber, ['kafka/in']);
  });

  it('of messages and wills stored by version 0.1.0 (grouped by name) is read back', async () => {
    // What 0.1.0 stored: user properties as mqtt-packet's object, a repeated name's values grouped.
    const grouped = { z: ['1', '3'], a: '2' };
    const message = (topic: string, retain: boolean) => ({
      topic,
      payload: Buffer.from('old').toString('base64'),
      qos: 1,
      retain,
      expiresAt: 0,
      publisherId: 'old-publisher',
      timestamp: Date.now(),
      contentType: 'text/plain',
      userProperties: grouped,
    });
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const json = (value: unknown) => Buffer.from(JSON.stringify(value));
    await meta.put(`/mqtt/retained/${sessionKey('legacy/retained')}`, json(message('legacy/retained', true)));
    await meta.put(
      `/mqtt/sessions/${sessionKey('legacy-sub')}`,
      json({
        clientId: 'legacy-sub',
        expiryInterval: 300,
        subscriptions: [
          [
            'legacy/#',
            { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 },
          ],
        ],
        disconnectedAt: Date.now(),
      }),
    );
    await meta.put(
      `/mqtt/sessions/${sessionKey('legacy-gone')}`,
      json({
        clientId: 'legacy-gone',
        expiryInterval: 300,
        subscriptions: [],
        disconnectedAt: Date.now(),
        will: {
          topic: 'legacy/will',
          payload: Buffer.from('bye').toString('base64'),
          qos: 1,
          retain: false,
          delayInterval: 0,
          userProperties: grouped,
          principal: { username: null, superuser: false },
        },
      }),
    );
    const shard = `mqtt-sessions/${sessionKey('legacy-sub')}`;
    await storage.createShard(shard);
    const entry = { t: 'm', s: 1, m: message('legacy/queued', false), q: 1, r: false, ids: null };
    await storage.append(shard, [{ recordCount: 1, maxTimestamp: Date.now(), data: json(entry) }]);

    const broker = await startInProcess({}, { meta, storage });
    stopInProcess = () => broker.stop();
    // The grouped order is all 0.1.0 kept: each name's values in order, names as first seen.
    const asStored = Buffer.concat([userProperty('z', '1'), userProperty('z', '3'), userProperty('a', '2')]);
    const back = await raw(broker.port, 'legacy-sub', {
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    const topics: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { topic, bytes } = await received(back);
      expect(bytes.includes(asStored), topic).toBe(true);
      topics.push(topic);
    }
    expect(topics.sort()).toEqual(['legacy/queued', 'legacy/will']);
    const late = await raw(broker.port, 'legacy-late');
    await subscribe(late, 'legacy/retained');
    const { bytes } = await received(late);
    expect(bytes.includes(asStored)).toBe(true);
    expect(bytes.includes(Buffer.from('text/plain'))).toBe(true);
  });
});
