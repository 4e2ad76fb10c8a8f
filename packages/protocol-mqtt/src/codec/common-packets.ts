import type { Packet } from 'mqtt-packet';
import { bodyOffset } from './frame-reader.js';
import type { ProtocolVersion } from './packets.js';

const PUBLISH = 3;
const ACKNOWLEDGEMENTS = ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const;

/**
 * Reads the packets a busy connection carries most: PUBLISH without properties and the 2-byte
 * acknowledgements. mqtt-packet takes over a microsecond for each, about as long as the rest of
 * a broker's work on a message; these take a few dozen nanoseconds. The packets are the ones
 * mqtt-packet would make. Returns null for anything else, and for anything unusual in these,
 * which mqtt-packet then decodes (or refuses) as before.
 */
export function decodeCommonPacket(frame: Buffer, version: ProtocolVersion): Packet | null {
  const first = frame[0]!;
  const type = first >> 4;
  const qos = (first >> 1) & 3;
  if (type === PUBLISH) return qos === 3 ? null : publish(frame, version, first, qos as 0 | 1 | 2);
  if (type < 4 || type > 7 || frame.length !== 4 || frame[1] !== 2) return null;
  const packet: Packet = {
    cmd: ACKNOWLEDGEMENTS[type - 4]!,
    retain: (first & 1) !== 0,
    qos: qos as 0 | 1 | 2,
    dup: (first & 8) !== 0,
    length: 2,
    topic: null,
    payload: null,
    messageId: frame.readUInt16BE(2),
  } as Packet;
  // MQTT 5: an acknowledgement of Remaining Length 2 means reason code 0x00 (section 3.4.2.1).
  if (version === 5) (packet as { reasonCode?: number }).reasonCode = 0;
  return packet;
}

function publish(frame: Buffer, version: ProtocolVersion, first: number, qos: 0 | 1 | 2): Packet | null {
  const body = bodyOffset(frame);
  const end = frame.length;
  if (body + 2 > end) return null;
  const topicEnd = body + 2 + frame.readUInt16BE(body);
  let at = topicEnd;
  let messageId: number | undefined;
  if (qos > 0) {
    if (at + 2 > end) return null;
    messageId = frame.readUInt16BE(at);
    at += 2;
  }
  if (version === 5) {
    if (at >= end || frame[at] !== 0) return null;
    at++;
  }
  if (at > end) return null;
  const packet = {
    cmd: 'publish',
    retain: (first & 1) !== 0,
    qos,
    dup: (first & 8) !== 0,
    length: end - body,
    topic: frame.toString('utf8', body + 2, topicEnd),
    payload: frame.subarray(at),
  } as Packet & { messageId?: number };
  if (messageId !== undefined) packet.messageId = messageId;
  return packet;
}
