import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePacket, type Packet, type ProtocolVersion } from '../src/codec/index.js';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';
import { connectPacket, packet, properties, str, userProperty } from './helpers/wire.js';

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

  it('a zero-length topic name without a topic alias is a protocol error, as Mosquitto says', async () => {
    await expectRejected(version, (c) => c.write(rawPublish(Buffer.alloc(0), version)), 0x82);
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

  it('a QoS 1 PUBLISH without a whole packet identifier is malformed and reaches no one', async () => {
    // The packet ends right after the topic, or one byte into the packet identifier.
    await expectRejected(version, (c) => c.write(packet(0x32, str('good/topic'))), 0x81);
    await expectRejected(version, (c) => c.write(packet(0x32, str('good/topic'), [0x07])), 0x81);
    expect(await goodInbox.settle(200)).toEqual([]);
  });

  it('packet identifier 0 on SUBSCRIBE, UNSUBSCRIBE or PUBACK is malformed (MQTT-2.2.1-3)', async () => {
    const noProperties = version === 5 ? [0] : [];
    await expectRejected(version, (c) => c.write(packet(0x82, [0, 0], noProperties, str('a/b'), [1])), 0x81);
    await expectRejected(version, (c) => c.write(packet(0xa2, [0, 0], noProperties, str('a/b'))), 0x81);
    await expectRejected(version, (c) => c.write(packet(0x40, [0, 0])), 0x81);
  });

  it('a PUBACK cut short and a PINGREQ with a body are malformed', async () => {
    await expectRejected(version, (c) => c.write([0x40, 0x01, 0x00]), 0x81);
    await expectRejected(version, (c) => c.write([0xc0, 0x01, 0x00]), 0x81);
  });

  it('UNSUBSCRIBE without a topic filter is a protocol error (MQTT-3.10.3-2)', async () => {
    await expectRejected(version, (c) => c.write(packet(0xa2, [0, 1], version === 5 ? [0] : [])), 0x82);
  });

  it('SUBSCRIBE options with a reserved bit set are malformed (MQTT-3.8.3-5)', async () => {
    const noProperties = version === 5 ? [0] : [];
    // MQTT 5 reserves bits 7-6; MQTT 3.1.1 reserves bits 7-2, so there no-local is one of them.
    const reserved = version === 5 ? [0x40, 0x80] : [0x40, 0x04];
    for (const options of reserved) {
      await expectRejected(
        version,
        (c) => c.write(packet(0x82, [0, 1], noProperties, str('a/b'), [options])),
        0x81,
      );
    }
  });

  it('a QoS 0 PUBLISH with DUP set is passed on without DUP (MQTT-3.3.1-3), as Mosquitto does', async () => {
    const topic = `dup-qos0-${version}`;
    const subscriber = await RawClient.connected(server.port, version, `dup-sub-${version}`);
    subscriber.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    expect((await subscriber.next()).cmd).toBe('suback');
    const publisher = await RawClient.connected(server.port, version, `dup-pub-${version}`);
    const noProperties = version === 5 ? [0] : [];
    publisher.write(packet(0x38, str(topic), noProperties, Buffer.from('x')));
    expect(await subscriber.nextBytes()).toEqual(packet(0x30, str(topic), noProperties, Buffer.from('x')));
    publisher.send({ cmd: 'pingreq' });
    expect((await publisher.next()).cmd).toBe('pingresp');
    publisher.close();
    subscriber.close();
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

describe('bad MQTT 5 properties', () => {
  const notUtf8 = Buffer.from([0xc0, 0xaf]);
  it.each([
    ['Message Expiry Interval twice', properties([0x02, 0, 0, 0, 10], [0x02, 0, 0, 0, 20]), 0x82],
    ['Content Type twice', properties([0x03], str('a'), [0x03], str('b')), 0x82],
    ['a Reason String (not a PUBLISH property)', properties([0x1f], str('why')), 0x81],
    ['a Session Expiry Interval (not a PUBLISH property)', properties([0x11, 0, 0, 0, 5]), 0x81],
    ['Payload Format Indicator 2', properties([0x01, 2]), 0x82],
    ['a Response Topic with a wildcard (MQTT-3.3.2-14)', properties([0x08], str('reply/#')), 0x82],
    ['a User Property name that is not UTF-8', properties([0x26], str(notUtf8), str('v')), 0x81],
    ['a User Property value that is not UTF-8', properties(userProperty('k', notUtf8)), 0x81],
    ['a Content Type that is not UTF-8', properties([0x03], str(notUtf8)), 0x81],
    ['a property running past the property length', Buffer.from([0x03, 0x03, 0x00, 0x03, 0x61, 0x62]), 0x81],
    ['a property length padded to two bytes (MQTT-1.5.5-1)', Buffer.from([0x80, 0x00]), 0x81],
    [
      'a Message Expiry Interval after a padded property length',
      Buffer.from([0x85, 0x00, 0x02, 0, 0, 0, 9]),
      0x81,
    ],
  ])(
    'PUBLISH with %s is refused at QoS 0 and 1 (DISCONNECT 0x81/0x82), and no one gets it',
    async (_name, props, code) => {
      await expectRejected(
        5,
        (c) => c.write(packet(0x30, str('good/topic'), props, Buffer.from('bad'))),
        code,
      );
      await expectRejected(
        5,
        (c) => c.write(packet(0x32, str('good/topic'), [0, 1], props, Buffer.from('bad'))),
        code,
      );
      expect(await goodInbox.settle(100)).toEqual([]);
    },
  );

  it.each([
    [
      'Session Expiry Interval twice',
      { properties: properties([0x11, 0, 0, 0, 10], [0x11, 0, 0, 0, 20]) },
      0x82,
    ],
    ['a Topic Alias', { properties: properties([0x23, 0, 1]) }, 0x81],
    ['a Topic Alias in its will', { will: { topic: 'w', properties: properties([0x23, 0, 1]) } }, 0x81],
    ['two bytes after its last field', { trailing: [0x00, 0x00] }, 0x81],
    [
      'Authentication Data without an Authentication Method',
      { properties: properties([0x16], str('x')) },
      0x82,
    ],
  ])('CONNECT with %s gets CONNACK 0x81/0x82, then is closed', async (_name, options, code) => {
    const client = await RawClient.open(server.port, 5);
    client.write(connectPacket(5, `bad-connect-${++seq}`, options));
    expect(await client.nextBytes()).toEqual(Buffer.from([0x20, 0x03, 0x00, code, 0x00]));
    expect(await client.closesWithin(3000)).toBe(true);
  });

  it('an AUTH with Remaining Length 0 (reason Success, no method) is a protocol error', async () => {
    await expectRejected(5, (c) => c.write([0xf0, 0x00]), 0x82);
  });

  it('SUBSCRIBE with a Subscription Identifier padded to more bytes than it needs is malformed', async () => {
    await expectRejected(
      5,
      (c) => c.write(packet(0x82, [0, 1], properties([0x0b, 0x85, 0x00]), str('a/b'), [1])),
      0x81,
    );
    expect(await goodInbox.settle(100)).toEqual([]);
  });

  it('a remaining length padded to two bytes is read, as Mosquitto reads it', async () => {
    const client = await RawClient.connected(server.port, 5, `padded-length-${++seq}`);
    client.write([0xc0, 0x80, 0x00]);
    expect(await client.next()).toMatchObject({ cmd: 'pingresp' });
    client.close();
  });

  it('SUBSCRIBE asking for QoS 3 or Retain Handling 3 is a protocol error (MQTT 5 section 3.8.3.1)', async () => {
    for (const options of [0x03, 0x30]) {
      await expectRejected(5, (c) => c.write(packet(0x82, [0, 1], [0], str('a/b'), [options])), 0x82);
    }
  });
});

describe('bad input before or instead of CONNECT', () => {
  it('closes an MQTT 3.1.1 connection whose CONNECT has bytes after its last field', async () => {
    const client = await RawClient.open(server.port, 4);
    client.write(connectPacket(4, 'trailing-4', { trailing: [0x00, 0x00] }));
    expect(await client.closesWithin(3000)).toBe(true);
    await expect(client.next(100)).rejects.toThrow('connection closed');
  });

  it.each([
    ['MQTT 3.1.1, the reserved flag set (MQTT-3.1.2-3)', 4, 0x03],
    ['MQTT 5, the reserved flag set (MQTT-3.1.2-3)', 5, 0x03],
    ['MQTT 3.1.1, a will QoS without a will (MQTT-3.1.2-13)', 4, 0x0a],
    ['MQTT 5, a will QoS without a will (MQTT-3.1.2-11)', 5, 0x0a],
    ['MQTT 3.1.1, will retain without a will (MQTT-3.1.2-15)', 4, 0x22],
    ['MQTT 5, will retain without a will (MQTT-3.1.2-13)', 5, 0x22],
    ['MQTT 3.1.1, a password without a user name (MQTT-3.1.2-22)', 4, 0x42],
  ] as const)('closes a connection whose CONNECT has, in %s', async (_name, version, flags) => {
    const client = await RawClient.open(server.port, version);
    client.write(
      packet(
        0x10,
        str('MQTT'),
        [version, flags, 0, 60],
        version === 5 ? [0] : [],
        str(`flags-${++seq}`),
        flags & 0x40 ? str('secret') : [],
      ),
    );
    expect(await client.closesWithin(3000)).toBe(true);
    await expect(client.next(100)).rejects.toThrow('connection closed');
  });

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

  it('answers a CONNECT sent together with a malformed packet, then refuses the packet', async () => {
    // In order, as the client sent them: the CONNECT is good and is answered; the next packet is not.
    for (const version of [4, 5] as const) {
      const client = await RawClient.open(server.port, version);
      client.write(
        Buffer.concat([
          connectPacket(version, `pipelined-${version}`),
          rawPublish(Buffer.from([0xc3, 0x28]), version),
        ]),
      );
      expect(await client.next()).toMatchObject({ cmd: 'connack', sessionPresent: false });
      if (version === 5) expect(await client.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x81 });
      expect(await client.closesWithin(3000)).toBe(true);
    }
  });

  it('logs the refusal of an unknown protocol version', async () => {
    const client = await RawClient.open(server.port, 4);
    const connect = connectPacket(4, 'v7');
    connect[8] = 7; // protocol level
    client.write(connect);
    expect(await client.next()).toMatchObject({ cmd: 'connack', returnCode: 1 });
    await server.waitForLog(
      (l) => l.msg === 'connection refused' && l.reason === 'unsupported_protocol_version',
    );
  });

  it('refuses a protocol name with another version\'s level: CONNACK "unacceptable protocol version"', async () => {
    for (const [name, level, answer] of [
      ['MQTT', 3, { returnCode: 1 }],
      ['MQIsdp', 4, { returnCode: 1 }],
      ['MQIsdp', 5, { reasonCode: 0x84 }],
    ] as const) {
      const client = await RawClient.open(server.port, level === 5 ? 5 : 4);
      client.write(
        packet(
          0x10,
          str(name),
          [level, 0x02, 0, 60],
          level === 5 ? properties() : [],
          str(`${name}-${level}`),
        ),
      );
      expect(await client.next()).toMatchObject({ cmd: 'connack', sessionPresent: false, ...answer });
      expect(await client.closesWithin(3000)).toBe(true);
      await server.waitForLog(
        (l) =>
          l.msg === 'connection refused' &&
          l.reason === 'unsupported_protocol_version' &&
          l.detail === `protocol name ${name} with level ${level}`,
      );
    }
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
