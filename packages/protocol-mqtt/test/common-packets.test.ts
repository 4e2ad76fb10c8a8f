import { parser as mqttPacketParser, type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { decodeCommonPacket } from '../src/codec/common-packets.js';
import { encodePacket, type ProtocolVersion } from '../src/codec/index.js';

/** What mqtt-packet itself makes of one whole frame, as a plain object. */
function byMqttPacket(frame: Buffer, version: ProtocolVersion): Record<string, unknown> {
  const parser = mqttPacketParser({ protocolVersion: version });
  let decoded: Packet | null = null;
  parser.on('packet', (packet: Packet) => (decoded = packet));
  parser.on('error', (error: Error) => {
    throw error;
  });
  parser.parse(frame);
  expect(decoded).not.toBeNull();
  return { ...decoded! };
}

const VERSIONS: ProtocolVersion[] = [3, 4, 5];

describe('decodeCommonPacket', () => {
  it('makes the packets mqtt-packet makes of PUBLISH without properties and short acknowledgements', () => {
    const frames: Array<[Buffer, ProtocolVersion]> = [];
    for (const version of VERSIONS) {
      for (const qos of [0, 1, 2] as const)
        for (const [dup, retain] of [
          [false, false],
          [true, false],
          [false, true],
        ] as const)
          for (const topic of ['a', 'sensors/ünïcödé/温度', 'x'.repeat(300)])
            for (const payload of [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(20_000, 7)])
              frames.push([
                encodePacket(
                  { cmd: 'publish', topic, payload, qos, dup: qos > 0 && dup, retain, messageId: 65_535 },
                  version,
                ),
                version,
              ]);
      for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const)
        for (const messageId of [1, 258, 65_535])
          frames.push([encodePacket({ cmd, messageId, reasonCode: 0 }, version), version]);
    }
    let read = 0;
    for (const [frame, version] of frames) {
      const packet = decodeCommonPacket(frame, version);
      if (packet === null) continue;
      read++;
      // Payloads compared as bytes: the deep comparison of large ones is slow.
      const { payload, ...fields } = { ...packet } as Record<string, unknown>;
      const { payload: expectedPayload, ...expectedFields } = byMqttPacket(frame, version);
      expect(fields).toStrictEqual(expectedFields);
      if (expectedPayload === null) expect(payload).toBeNull();
      else expect((payload as Buffer).equals(expectedPayload as Buffer)).toBe(true);
    }
    // Every one of them is read directly: none is left to mqtt-packet.
    expect(read).toBe(frames.length);
  });

  it('leaves everything else to mqtt-packet', () => {
    const publish5 = encodePacket(
      {
        cmd: 'publish',
        topic: 't',
        payload: Buffer.from('p'),
        qos: 1,
        messageId: 3,
        dup: false,
        retain: false,
        properties: { contentType: 'text/plain' },
      },
      5,
    );
    const leftOver: Array<[Buffer, ProtocolVersion]> = [
      [publish5, 5],
      [encodePacket({ cmd: 'puback', messageId: 3, reasonCode: 0x10 }, 5), 5],
      [encodePacket({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: 'a', qos: 1 }] }, 4), 4],
      [encodePacket({ cmd: 'pingreq' }, 4), 4],
      // QoS 3, a topic longer than the packet, a packet id cut short, no property length.
      [Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]), 4],
      [Buffer.from([0x30, 0x03, 0x00, 0x09, 0x61]), 4],
      [Buffer.from([0x32, 0x04, 0x00, 0x01, 0x61, 0x00]), 4],
      [Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61]), 5],
      [Buffer.from([0x30, 0x01, 0x00]), 4],
      // An acknowledgement with more than a packet id.
      [Buffer.from([0x40, 0x03, 0x00, 0x01, 0x00]), 4],
    ];
    for (const [frame, version] of leftOver) expect(decodeCommonPacket(frame, version)).toBeNull();
  });
});
