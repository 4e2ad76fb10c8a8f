import { describe, expect, it } from 'vitest';
import type { MqttCodecError } from '../src/codec/index.js';
import {
  encodeAck,
  encodePacket,
  encodePacketWithin,
  encodePublish,
  PacketParser,
  publishUserProperties,
  ReasonCode,
  type Packet,
} from '../src/codec/index.js';
import { packet, properties, str, userProperty } from './helpers/wire.js';

function parserFor(options: { maxPacketSize?: number; protocolVersion?: 3 | 4 | 5 } = {}) {
  const packets: Array<{ packet: Packet; frame: Buffer }> = [];
  const errors: MqttCodecError[] = [];
  const parser = new PacketParser({
    ...options,
    onPacket: (packet, frame) => packets.push({ packet, frame: Buffer.from(frame) }),
    onError: (error) => errors.push(error),
  });
  return { parser, packets, errors };
}

const connect5 = encodePacket(
  { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'c1', clean: true, keepalive: 30 },
  5,
);

describe('PacketParser', () => {
  it('splits a stream into packets whatever the chunking, with the exact bytes of each', () => {
    const publish = encodePacket(
      {
        cmd: 'publish',
        topic: 'a/b',
        payload: Buffer.from('x'.repeat(300)),
        qos: 1,
        messageId: 9,
        dup: false,
        retain: false,
        properties: { userProperties: { k: 'v' }, contentType: 'text/plain' },
      },
      5,
    );
    const stream = Buffer.concat([connect5, publish, publish]);
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      const { parser, packets, errors } = parserFor();
      for (let i = 0; i < stream.length; i += size) parser.parse(stream.subarray(i, i + size));
      expect(errors).toEqual([]);
      expect(packets.map((p) => p.packet.cmd)).toEqual(['connect', 'publish', 'publish']);
      expect(packets[1]!.frame.equals(publish)).toBe(true);
      const p = packets[2]!.packet as Extract<Packet, { cmd: 'publish' }>;
      expect(p.properties?.contentType).toBe('text/plain');
      expect(parser.protocolVersion).toBe(5);
    }
  });

  it('refuses a packet over the maximum size as soon as its length is known', () => {
    const { parser, packets, errors } = parserFor({ maxPacketSize: 100, protocolVersion: 4 });
    // Type byte and a 2-byte remaining length of 200; the body never needs to arrive.
    parser.parse(Buffer.from([0x30, 0xc8, 0x01]));
    expect(packets).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.reasonCode).toBe(ReasonCode.PacketTooLarge);
    parser.parse(Buffer.from([0xc0, 0x00]));
    expect(packets).toEqual([]);
  });

  it('reports malformed packets: QoS 3, bad flags, 5-byte lengths, packet id 0, will QoS 3', () => {
    const cases: Array<[string, number[]]> = [
      ['QoS 3', [0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]],
      ['reserved flags', [0x82 | 0x01, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61]],
      ['length', [0x30, 0xff, 0xff, 0xff, 0xff, 0x01]],
      ['packet id 0', [0x32, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00]],
    ];
    for (const [, bytes] of cases) {
      const { parser, errors } = parserFor({ protocolVersion: 4 });
      parser.parse(Buffer.from(bytes));
      expect(errors).toHaveLength(1);
      expect(errors[0]!.reasonCode).toBe(ReasonCode.MalformedPacket);
    }
    const willQos3 = Buffer.from(
      encodePacket(
        {
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: 'w',
          clean: true,
          keepalive: 0,
          will: { topic: 't', payload: Buffer.from('p'), qos: 1, retain: false },
        },
        4,
      ),
    );
    willQos3[9] = willQos3[9]! | 0x18; // connect flags: will QoS bits 11
    const { parser, errors } = parserFor();
    parser.parse(willQos3);
    expect(errors[0]?.message).toMatch(/will QoS/);
  });

  it('refuses topic names and filters that are not UTF-8 or contain U+0000, keeps U+FFFD itself', () => {
    const badTopic = [0x30, 0x05, 0x00, 0x02, 0xc3, 0x28, 0x00];
    const nulTopic = [0x30, 0x05, 0x00, 0x02, 0x61, 0x00, 0x00];
    for (const bytes of [badTopic, nulTopic]) {
      const { parser, errors } = parserFor({ protocolVersion: 4 });
      parser.parse(Buffer.from(bytes));
      expect(errors[0]?.reasonCode).toBe(ReasonCode.MalformedPacket);
    }
    const replacement = encodePacket(
      { cmd: 'publish', topic: 'a/\uFFFD', payload: Buffer.alloc(0), qos: 0, dup: false, retain: false },
      4,
    );
    const ok = parserFor({ protocolVersion: 4 });
    ok.parser.parse(replacement);
    expect(ok.errors).toEqual([]);
    expect(ok.packets).toHaveLength(1);

    // SUBSCRIBE (v5: packet id, properties, filter, options) with an invalid filter.
    const sub = parserFor({ protocolVersion: 5 });
    sub.parser.parse(Buffer.from([0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0xff, 0x00]));
    expect(sub.errors[0]?.message).toMatch(/UTF-8/);
  });

  it('ignores input after the first error', () => {
    const { parser, packets, errors } = parserFor({ protocolVersion: 4 });
    parser.parse(Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]));
    parser.parse(encodePacket({ cmd: 'pingreq' }, 4));
    expect(errors).toHaveLength(1);
    expect(packets).toEqual([]);
    expect(parser.hasFailed).toBe(true);
  });

  it("keeps each connection's protocol version and failures its own", () => {
    const connect4 = encodePacket(
      { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'c4', clean: true, keepalive: 30 },
      4,
    );
    const publish = (version: 4 | 5, topic: string) =>
      encodePacket(
        {
          cmd: 'publish',
          topic,
          payload: Buffer.from('payload'),
          qos: 1,
          messageId: 7,
          dup: false,
          retain: false,
          ...(version === 5 ? { properties: { contentType: 'text/plain' } } : {}),
        },
        version,
      );
    const five = parserFor();
    const four = parserFor();
    const other = parserFor();
    five.parser.parse(connect5);
    four.parser.parse(connect4);
    other.parser.parse(connect4);
    const publish5 = publish(5, 'to/five');
    // Packets of different versions, one of them split around another's.
    five.parser.parse(publish5.subarray(0, 6));
    four.parser.parse(publish(4, 'to/four'));
    five.parser.parse(publish5.subarray(6));
    // One client's bad packet (QoS 3), and another's second CONNECT, of version 5.
    four.parser.parse(Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]));
    other.parser.parse(connect5);
    five.parser.parse(publish(5, 'again/five'));
    other.parser.parse(publish(5, 'other/five'));
    const late = parserFor();
    late.parser.parse(connect4);
    late.parser.parse(publish(4, 'late/four'));

    const published = (p: { packets: Array<{ packet: Packet }> }) =>
      p.packets
        .map((x) => x.packet)
        .filter((x): x is Extract<Packet, { cmd: 'publish' }> => x.cmd === 'publish')
        .map((x) => [x.topic, x.payload.toString(), x.properties?.contentType ?? null]);
    expect(published(five)).toEqual([
      ['to/five', 'payload', 'text/plain'],
      ['again/five', 'payload', 'text/plain'],
    ]);
    expect(five.errors).toEqual([]);
    expect(published(four)).toEqual([['to/four', 'payload', null]]);
    expect(four.errors.map((e) => e.message)).toEqual([expect.stringMatching(/QoS/)]);
    expect(other.errors).toEqual([]);
    expect(other.parser.protocolVersion).toBe(5);
    expect(published(other)).toEqual([['other/five', 'payload', 'text/plain']]);
    expect(late.errors).toEqual([]);
    expect(published(late)).toEqual([['late/four', 'payload', null]]);
  });
});

describe('encodeAck', () => {
  it('encodes the short form for success and adds the reason code otherwise', () => {
    expect([...encodeAck('puback', 0x1234)]).toEqual([0x40, 0x02, 0x12, 0x34]);
    expect([...encodeAck('pubrel', 1)]).toEqual([0x62, 0x02, 0x00, 0x01]);
    expect([...encodeAck('pubcomp', 2, 0x92)]).toEqual([0x70, 0x03, 0x00, 0x02, 0x92]);
    const { parser, packets } = parserFor({ protocolVersion: 5 });
    parser.parse(encodeAck('pubrec', 5, 0x87));
    expect(packets[0]!.packet).toMatchObject({ cmd: 'pubrec', messageId: 5, reasonCode: 0x87 });
  });
});

describe('encodePublish', () => {
  it('encodes what mqtt-packet does, and keeps User Properties in the order given', () => {
    const fields = {
      topic: 'a/ü',
      payload: Buffer.from('x'.repeat(200)),
      qos: 1 as const,
      messageId: 7,
      dup: true,
      retain: true,
    };
    const props = {
      payloadFormatIndicator: true,
      messageExpiryInterval: 60,
      contentType: 'text/plain',
      responseTopic: 'reply/1',
      correlationData: Buffer.from([1, 2]),
      topicAlias: 3,
    };
    for (const version of [4, 5] as const) {
      expect(encodePublish({ ...fields, properties: props }, version)).toEqual(
        encodePacket({ cmd: 'publish', ...fields, properties: props }, version),
      );
    }
    const ordered = encodePublish(
      {
        ...fields,
        qos: 0,
        properties: {
          subscriptionIdentifiers: [5, 300],
          userProperties: [
            ['z', '1'],
            ['a', '2'],
            ['z', '3'],
          ],
        },
      },
      5,
    );
    expect(ordered).toEqual(
      packet(
        0x39,
        str('a/ü'),
        properties(
          [0x0b, 5, 0x0b, 0xac, 0x02],
          userProperty('z', '1'),
          userProperty('a', '2'),
          userProperty('z', '3'),
        ),
        fields.payload,
      ),
    );
    expect(publishUserProperties(ordered)).toEqual([
      ['z', '1'],
      ['a', '2'],
      ['z', '3'],
    ]);
  });
});

describe('encodePacketWithin', () => {
  it('leaves out the reason string and user properties, and Response Information of CONNACK, to fit', () => {
    const disconnect: Packet = {
      cmd: 'disconnect',
      reasonCode: 0x82,
      properties: { reasonString: 'why', userProperties: { k: 'v' }, sessionExpiryInterval: 1 },
    };
    expect(encodePacketWithin(disconnect, 5, 100)).toEqual(encodePacket(disconnect, 5));
    expect([...encodePacketWithin(disconnect, 5, 10)!]).toEqual([0xe0, 0x07, 0x82, 0x05, 0x11, 0, 0, 0, 1]);
    expect(encodePacketWithin(disconnect, 5, 8)).toBeNull();
    const connack: Packet = {
      cmd: 'connack',
      reasonCode: 0,
      sessionPresent: false,
      properties: { responseInformation: 'response/c/' },
    };
    expect([...encodePacketWithin(connack, 5, 16)!]).toEqual([0x20, 0x03, 0x00, 0x00, 0x00]);
    // A PUBLISH's properties are the message's: too large, it is not sent at all.
    const publish: Packet = {
      cmd: 'publish',
      topic: 't',
      payload: Buffer.alloc(4),
      qos: 0,
      dup: false,
      retain: false,
      properties: { userProperties: { k: 'v'.repeat(20) } },
    };
    expect(encodePacketWithin(publish, 5, 20)).toBeNull();
  });
});

describe('PacketParser checks beyond mqtt-packet', () => {
  it('reads an AUTH of Remaining Length 0 as reason 0x00 without properties (MQTT 5)', () => {
    const { parser, packets, errors } = parserFor({ protocolVersion: 5 });
    parser.parse(Buffer.from([0xf0, 0x00]));
    expect(errors).toEqual([]);
    expect(packets[0]!.packet).toEqual({ cmd: 'auth', reasonCode: 0 });
  });

  it('checks the properties of the packets a client receives too', () => {
    const cases: Array<[string, Buffer, number]> = [
      ['Topic Alias in CONNACK', packet(0x20, [0, 0], properties([0x23, 0, 1])), ReasonCode.MalformedPacket],
      [
        'Reason String twice in SUBACK',
        packet(0x90, [0, 1], properties([0x1f], str('a'), [0x1f], str('b')), [0]),
        ReasonCode.ProtocolError,
      ],
      ['Maximum QoS 2 in CONNACK', packet(0x20, [0, 0], properties([0x24, 2])), ReasonCode.ProtocolError],
      [
        'a reason string that is not UTF-8 in PUBACK',
        packet(0x40, [0, 1, 0x10], properties([0x1f], str(Buffer.from([0xff])))),
        ReasonCode.MalformedPacket,
      ],
    ];
    for (const [what, bytes, reasonCode] of cases) {
      const { parser, errors } = parserFor({ protocolVersion: 5 });
      parser.parse(bytes);
      expect(
        errors.map((e) => e.reasonCode),
        what,
      ).toEqual([reasonCode]);
    }
  });
});
