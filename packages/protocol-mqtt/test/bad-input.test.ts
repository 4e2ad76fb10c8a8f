import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePacket, type Packet, type ProtocolVersion } from '../src/codec/index.js';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

let server: MqttServer;
let good: MqttClient[] = [];
let goodInbox: Inbox;
let seq = 0;

beforeAll(async () => {
  server = await startServer({ mqtt: ['max_packet_size = 1024', 'max_topic_levels = 4'] });
  // A well-behaved pair that must be unaffected by everything below.
  const sub = await connectClient(server.port, { clientId: 'good-sub' });
  const pub = await connectClient(server.port, { clientId: 'good-pub' });
  good = [sub, pub];
  goodInbox = new Inbox(sub);
  await sub.subscribeAsync('good/topic', { qos: 1 });
});
afterAll(async () => {
  await endAll(good);
  await server.stop();
});

/** A PUBLISH with any topic bytes, QoS 0, v3 or v5 layout. */
function rawPublish(topic: Buffer, version: ProtocolVersion, header = 0x30): Buffer {
  const body = Buffer.concat([
    Buffer.from([topic.length >> 8, topic.length & 0xff]),
    topic,
    version === 5 ? Buffer.from([0]) : Buffer.alloc(0),
    Buffer.from('payload'),
  ]);
  return Buffer.concat([Buffer.from([header, body.length]), body]);
}

async function expectRejected(version: ProtocolVersion, send: (c: RawClient) => void, reasonCode: number) {
  const client = await RawClient.connected(server.port, version, `bad-${version}-${++seq}`);
  send(client);
  if (version === 5) {
    const packet = await client.next();
    expect(packet).toMatchObject({ cmd: 'disconnect', reasonCode });
  }
  expect(await client.closesWithin(3000)).toBe(true);
}

const each = describe.each([{ version: 4 as const }, { version: 5 as const }]);

each('bad input from an MQTT $version client', ({ version }) => {
  it('QoS 3 is malformed', async () => {
    await expectRejected(version, (c) => c.write(rawPublish(Buffer.from('a'), version, 0x36)), 0x81);
  });

  it('a topic that is not UTF-8 is malformed', async () => {
    await expectRejected(version, (c) => c.write(rawPublish(Buffer.from([0x61, 0xc3, 0x28]), version)), 0x81);
  });

  it('a wildcard in a PUBLISH topic is an invalid topic name', async () => {
    await expectRejected(version, (c) => c.write(rawPublish(Buffer.from('a/+/b'), version)), 0x90);
  });

  it('a topic deeper than max_topic_levels is an invalid topic name', async () => {
    await expectRejected(version, (c) => c.write(rawPublish(Buffer.from('a/b/c/d/e'), version)), 0x90);
  });

  it('a packet over max_packet_size is refused before it is read', async () => {
    const big: Packet = {
      cmd: 'publish',
      topic: 'big',
      payload: Buffer.alloc(2000),
      qos: 0,
      dup: false,
      retain: false,
    };
    await expectRejected(version, (c) => c.send(big), 0x95);
  });

  it('a second CONNECT is a protocol error', async () => {
    await expectRejected(
      version,
      (c) =>
        c.send({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: version,
          clientId: 'again',
          clean: true,
          keepalive: 0,
        }),
      0x82,
    );
  });

  it('a packet only a server sends is a protocol error', async () => {
    await expectRejected(version, (c) => c.send({ cmd: 'pingresp' }), 0x82);
  });

  it('an invalid topic filter gets a failure in SUBACK and the connection stays', async () => {
    const client = await RawClient.connected(server.port, version, `filter-${version}`);
    client.send({
      cmd: 'subscribe',
      messageId: 3,
      subscriptions: [
        { topic: 'a/#/b', qos: 1 },
        { topic: 'ok/+', qos: 1 },
        { topic: 'a/b/c/d/e', qos: 0 },
      ],
    });
    const suback = await client.next();
    expect(suback).toMatchObject({
      cmd: 'suback',
      messageId: 3,
      granted: version === 5 ? [0x8f, 1, 0x8f] : [0x80, 1, 0x80],
    });
    client.send({ cmd: 'pingreq' });
    expect((await client.next()).cmd).toBe('pingresp');
    client.close();
  });
});

describe('bad input before or instead of CONNECT', () => {
  it('closes a connection whose first packet is not CONNECT', async () => {
    const client = await RawClient.open(server.port);
    client.write(rawPublish(Buffer.from('early'), 4));
    expect(await client.closesWithin(3000)).toBe(true);
  });

  it('closes a connection that sends garbage', async () => {
    const client = await RawClient.open(server.port);
    client.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(await client.closesWithin(3000)).toBe(true);
  });

  it('answers an unknown protocol version with CONNACK 0x01', async () => {
    const client = await RawClient.open(server.port, 4);
    const connect = Buffer.from(
      encodePacket(
        { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'v6', clean: true, keepalive: 0 },
        4,
      ),
    );
    connect[8] = 6; // protocol level
    client.write(connect);
    expect(await client.next()).toMatchObject({ cmd: 'connack', returnCode: 1 });
    expect(await client.closesWithin(3000)).toBe(true);
  });

  it('a will topic with a wildcard is refused: CONNACK 0x90 for MQTT 5, closed for MQTT 3', async () => {
    for (const version of [4, 5] as const) {
      const client = await RawClient.open(server.port, version);
      client.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: version,
        clientId: `bad-will-${version}`,
        clean: true,
        keepalive: 0,
        will: { topic: 'wills/#', payload: Buffer.from('x'), qos: 0, retain: false },
      });
      if (version === 5) expect(await client.next()).toMatchObject({ cmd: 'connack', reasonCode: 0x90 });
      expect(await client.closesWithin(3000)).toBe(true);
    }
  });

  it('v5: an unknown topic alias and an alias above the maximum are refused', async () => {
    const unknown = await RawClient.connected(server.port, 5, 'alias-unknown');
    unknown.send({
      cmd: 'publish',
      topic: '',
      payload: Buffer.from('x'),
      qos: 0,
      dup: false,
      retain: false,
      properties: { topicAlias: 2 },
    });
    expect(await unknown.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x82 });
    const tooBig = await RawClient.connected(server.port, 5, 'alias-big');
    tooBig.send({
      cmd: 'publish',
      topic: 't',
      payload: Buffer.from('x'),
      qos: 0,
      dup: false,
      retain: false,
      properties: { topicAlias: 11 },
    });
    expect(await tooBig.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x94 });
  });
});

describe('after all that', () => {
  it('the well-behaved clients were never disturbed, and every refusal was logged and counted', async () => {
    await good[1]!.publishAsync('good/topic', 'still fine', { qos: 1 });
    expect((await goodInbox.at(0)).payload).toBe('still fine');
    expect(good.every((c) => c.connected)).toBe(true);
    for (const reason of [
      'malformed_packet',
      'invalid_topic',
      'packet_too_large',
      'protocol_violation',
      'invalid_topic_filter',
      'packet_before_connect',
      'invalid_topic_alias',
    ]) {
      await server.waitForMetric(
        new RegExp(`robustmq_mqtt_bad_input_total\\{reason="${reason}",node="1"\\} [1-9]`),
      );
    }
    expect(server.logs.some((l) => l.msg === 'bad input' && l.protocol === 'mqtt')).toBe(true);
    expect(server.child.exitCode).toBeNull();
  });
});
