import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../src/codec/index.js';
import { connectClient, Inbox } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

let server: MqttServer;
let seq = 0;
const unique = (what: string) => `${what}-${++seq}`;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

const publish = (topic: string, payload: string, qos: 0 | 1 | 2, messageId?: number): Packet => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from(payload),
  qos,
  dup: false,
  retain: false,
  ...(messageId === undefined ? {} : { messageId }),
});

async function subscribed(version: 4 | 5, clientId: string, topic: string, qos: 0 | 1 | 2, extra = {}) {
  const client = await RawClient.connected(server.port, version, clientId, extra);
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] });
  expect((await client.next()).cmd).toBe('suback');
  return client;
}

describe.each([{ version: 4 as const }, { version: 5 as const }])(
  'MQTT $version at the packet level',
  ({ version }) => {
    it('QoS 2 from a client: a repeated PUBLISH is not delivered twice; PUBREL gets PUBCOMP', async () => {
      const topic = unique('in-qos2');
      const watcher = await subscribed(version, unique('watch'), topic, 2);
      const sender = await RawClient.connected(server.port, version, unique('sender'));
      sender.send(publish(topic, 'once', 2, 10));
      expect(await sender.next()).toMatchObject({ cmd: 'pubrec', messageId: 10 });
      sender.send({ ...publish(topic, 'once', 2, 10), dup: true } as Packet);
      expect(await sender.next()).toMatchObject({ cmd: 'pubrec', messageId: 10 });
      sender.send({ cmd: 'pubrel', messageId: 10 });
      expect(await sender.next()).toMatchObject({ cmd: 'pubcomp', messageId: 10 });
      sender.send({ cmd: 'pubrel', messageId: 10 });
      const second = await sender.next();
      expect(second).toMatchObject({ cmd: 'pubcomp', messageId: 10 });
      if (version === 5) expect(second).toMatchObject({ reasonCode: 0x92 });

      const delivered = await watcher.next();
      expect(delivered).toMatchObject({ cmd: 'publish', topic, qos: 2 });
      const id = (delivered as { messageId: number }).messageId;
      // QoS 2 to a client: PUBREC -> PUBREL (again for a repeated PUBREC) -> PUBCOMP.
      watcher.send({ cmd: 'pubrec', messageId: id });
      expect(await watcher.next()).toMatchObject({ cmd: 'pubrel', messageId: id });
      watcher.send({ cmd: 'pubrec', messageId: id });
      expect(await watcher.next()).toMatchObject({ cmd: 'pubrel', messageId: id });
      watcher.send({ cmd: 'pubcomp', messageId: id });
      watcher.send({ cmd: 'pingreq' });
      expect((await watcher.next()).cmd).toBe('pingresp');
      sender.close();
      watcher.close();
    });

    it('sends unacknowledged messages again with DUP on reconnect, and PUBREL for released ones', async () => {
      const topic = unique('dup');
      const clientId = unique('redeliver');
      const persistent =
        version === 5 ? { clean: false, properties: { sessionExpiryInterval: 60 } } : { clean: false };
      const first = await subscribed(version, clientId, topic, 2, persistent);
      const sender = await connectClient(server.port, { clientId: unique('p') });
      await sender.publishAsync(topic, 'a', { qos: 1 });
      await sender.publishAsync(topic, 'b', { qos: 2 });
      const a = (await first.next()) as Extract<Packet, { cmd: 'publish' }>;
      const b = (await first.next()) as Extract<Packet, { cmd: 'publish' }>;
      expect([a.payload.toString(), a.qos, a.dup, b.payload.toString(), b.qos]).toEqual([
        'a',
        1,
        false,
        'b',
        2,
      ]);
      first.send({ cmd: 'pubrec', messageId: b.messageId! });
      expect(await first.next()).toMatchObject({ cmd: 'pubrel', messageId: b.messageId });
      first.close();
      await first.closed;

      const again = await RawClient.open(server.port, version);
      again.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: version,
        clientId,
        keepalive: 60,
        ...persistent,
      });
      expect(await again.next()).toMatchObject({ cmd: 'connack', sessionPresent: true });
      expect(await again.next()).toMatchObject({ cmd: 'publish', messageId: a.messageId, dup: true, qos: 1 });
      expect(await again.next()).toMatchObject({ cmd: 'pubrel', messageId: b.messageId });
      again.send({ cmd: 'puback', messageId: a.messageId! });
      again.send({ cmd: 'pubcomp', messageId: b.messageId! });
      again.send({ cmd: 'disconnect' });
      await again.closed;
      await sender.endAsync();
    });

    it('closes a silent client after 1.5 times its keep-alive and publishes its will', async () => {
      const topic = unique('keepalive-will');
      const watcher = await connectClient(server.port, { clientId: unique('w') });
      const inbox = new Inbox(watcher);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const silent = await RawClient.connected(server.port, version, unique('silent'), {
        keepalive: 1,
        will: { topic, payload: Buffer.from('timed out'), qos: 1, retain: false },
      });
      const started = Date.now();
      if (version === 5)
        expect(await silent.next(4000)).toMatchObject({ cmd: 'disconnect', reasonCode: 0x8d });
      expect(await silent.closesWithin(4000)).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      expect((await inbox.at(0)).payload).toBe('timed out');
      await watcher.endAsync();
    });

    it('keeps a client that pings within its keep-alive', async () => {
      const client = await RawClient.connected(server.port, version, unique('pinger'), { keepalive: 1 });
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 700));
        client.send({ cmd: 'pingreq' });
        expect((await client.next()).cmd).toBe('pingresp');
      }
      client.close();
    });
  },
);

/** CONNECT bytes with an empty client id, which mqtt-packet refuses to encode for these cases. */
function emptyIdConnect(name: string, level: number, clean: boolean): Buffer {
  const body = Buffer.concat([
    Buffer.from([0, name.length]),
    Buffer.from(name),
    Buffer.from([level, clean ? 0x02 : 0x00, 0, 0, 0, 0]),
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

describe('client ids and CONNECT checks', () => {
  it('MQTT 3.1.1: an empty client id needs a clean session (else CONNACK 0x02)', async () => {
    const refused = await RawClient.open(server.port, 4);
    refused.write(emptyIdConnect('MQTT', 4, false));
    expect(await refused.next()).toMatchObject({ cmd: 'connack', returnCode: 2 });
    expect(await refused.closesWithin(3000)).toBe(true);

    const accepted = await RawClient.connected(server.port, 4, '');
    accepted.send({ cmd: 'pingreq' });
    expect((await accepted.next()).cmd).toBe('pingresp');
    accepted.close();
  });

  it('MQTT 3.1: an empty client id is refused (CONNACK 0x02)', async () => {
    const client = await RawClient.open(server.port, 3);
    client.write(emptyIdConnect('MQIsdp', 3, true));
    expect(await client.next()).toMatchObject({ cmd: 'connack', returnCode: 2 });
  });

  it('MQTT 5: DISCONNECT may not raise a session expiry that was 0', async () => {
    const client = await RawClient.connected(server.port, 5, unique('expiry0'));
    client.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
    expect(await client.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x82 });
  });

  it('MQTT 5: outbound QoS 1 respects the client receive maximum', async () => {
    const topic = unique('recvmax');
    const client = await subscribed(5, unique('narrow'), topic, 1, { properties: { receiveMaximum: 2 } });
    const sender = await connectClient(server.port, { clientId: unique('s') });
    for (let i = 0; i < 5; i++) await sender.publishAsync(topic, String(i), { qos: 1 });
    const first = (await client.next()) as Extract<Packet, { cmd: 'publish' }>;
    await client.next();
    await expect(client.next(300)).rejects.toThrow(/no packet/);
    client.send({ cmd: 'puback', messageId: first.messageId! });
    expect(await client.next()).toMatchObject({ cmd: 'publish', payload: Buffer.from('2') });
    await expect(client.next(300)).rejects.toThrow(/no packet/);
    client.close();
    await sender.endAsync();
  });
});

describe('server keep-alive', () => {
  it('MQTT 5: a client asking for no keep-alive (or more than max_keep_alive) is told the maximum', async () => {
    const capped = await startServer({ mqtt: ['max_keep_alive = 5'] });
    try {
      for (const keepalive of [0, 60]) {
        const client = await RawClient.open(capped.port, 5);
        client.send({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 5,
          clientId: `ka${keepalive}`,
          clean: true,
          keepalive,
        });
        expect(await client.next()).toMatchObject({
          cmd: 'connack',
          reasonCode: 0,
          properties: { serverKeepAlive: 5 },
        });
        client.close();
      }
    } finally {
      await capped.stop();
    }
  });
});

describe('authentication', () => {
  it('refuses anonymous clients when the server does not allow them', async () => {
    const strict = await startServer({ extra: ['[auth]', 'allow_anonymous = false'] });
    try {
      for (const [version, code] of [
        [4, { returnCode: 5 }],
        [5, { reasonCode: 0x87 }],
      ] as const) {
        const client = await RawClient.open(strict.port, version);
        client.send({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: version,
          clientId: `anon${version}`,
          clean: true,
          keepalive: 0,
        });
        expect(await client.next()).toMatchObject({ cmd: 'connack', ...code });
        expect(await client.closesWithin(3000)).toBe(true);
      }
      await strict.waitForMetric(
        /robustmq_mqtt_connections_refused_total\{reason="not_authorized",node="1"\} 2/,
      );
    } finally {
      await strict.stop();
    }
  });
});
