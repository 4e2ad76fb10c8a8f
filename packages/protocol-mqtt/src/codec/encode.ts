import { generate, writeToStream, type Packet } from 'mqtt-packet';
import type { ProtocolVersion, QoS } from './packets.js';
import type { UserPropertyList } from './user-properties.js';

// mqtt-packet would otherwise build, at its first packet, a table of 65,536 two-byte buffers for
// the numbers it writes: about 6.5 MB held for good, for packets (CONNACK, SUBACK, ...) far off
// the hot paths, which this module encodes itself.
writeToStream.cacheNumbers = false;

/**
 * Encodes one packet for the given protocol version. Throws an Error when the packet cannot be
 * expressed (an invalid topic, property or packet identifier).
 */
export function encodePacket(packet: Packet, protocolVersion: ProtocolVersion): Buffer {
  return generate(packet, { protocolVersion });
}

/**
 * Writes one packet to a stream; returns the stream's `write` result (false: wait for `drain`).
 * mqtt-packet corks the stream for the rest of the tick, so packets written together leave in
 * one system call.
 */
export function writePacket(
  packet: Packet,
  stream: NodeJS.WritableStream,
  protocolVersion: ProtocolVersion,
): boolean {
  return writeToStream(packet, stream, { protocolVersion });
}

const ACK_TYPES = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 } as const;

/**
 * Encodes PUBACK, PUBREC, PUBREL or PUBCOMP without properties, the hot path of QoS 1 and 2.
 * Reason code 0 gives the 4-byte form every version understands; another code (MQTT 5 only)
 * adds one byte.
 */
export function encodeAck(cmd: keyof typeof ACK_TYPES, packetId: number, reasonCode = 0): Buffer {
  const buffer = Buffer.allocUnsafe(reasonCode === 0 ? 4 : 5);
  buffer[0] = ACK_TYPES[cmd];
  buffer[1] = reasonCode === 0 ? 2 : 3;
  buffer.writeUInt16BE(packetId, 2);
  if (reasonCode !== 0) buffer[4] = reasonCode;
  return buffer;
}

/**
 * Encodes a packet for a peer that accepts packets of at most `maximumPacketSize` bytes (its MQTT 5
 * Maximum Packet Size, MQTT-3.1.2-24). When the packet is larger, what a sender may leave out is
 * dropped: the Reason String and User Properties (MQTT-3.2.2-19 and its like for every packet
 * that has them) and the Response Information of CONNACK, which a server need not send. Null when
 * the packet is too large even so, and for a too large PUBLISH, whose properties are the
 * message's: it must not be sent (MQTT-3.1.2-25).
 */
export function encodePacketWithin(
  packet: Packet,
  protocolVersion: ProtocolVersion,
  maximumPacketSize: number,
): Buffer | null {
  const encoded = generate(packet, { protocolVersion });
  if (encoded.length <= maximumPacketSize) return encoded;
  const properties = 'properties' in packet ? packet.properties : undefined;
  if (!properties || packet.cmd === 'publish') return null;
  const kept: Record<string, unknown> = { ...properties };
  delete kept.reasonString;
  delete kept.userProperties;
  if (packet.cmd === 'connack') delete kept.responseInformation;
  const smaller = generate({ ...packet, properties: kept } as Packet, { protocolVersion });
  return smaller.length <= maximumPacketSize ? smaller : null;
}

/** A PUBLISH to encode; unlike mqtt-packet's, its User Properties keep their order. */
export interface PublishFields {
  topic: string;
  payload: Buffer;
  qos: QoS;
  /** Required for QoS 1 and 2. */
  messageId?: number;
  dup: boolean;
  retain: boolean;
  /** MQTT 5 only: left out for 3.1 and 3.1.1. */
  properties?: PublishFieldProperties;
}

export interface PublishFieldProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  subscriptionIdentifiers?: readonly number[];
  topicAlias?: number;
  userProperties?: UserPropertyList;
}

/** Encodes a PUBLISH, its properties in identifier order and its User Properties as listed. */
export function encodePublish(publish: PublishFields, protocolVersion: ProtocolVersion): Buffer {
  const props = protocolVersion === 5 ? publish.properties : undefined;
  const topicLength = Buffer.byteLength(publish.topic);
  let propertiesLength = 0;
  if (props) {
    if (props.payloadFormatIndicator !== undefined) propertiesLength += 2;
    if (props.messageExpiryInterval !== undefined) propertiesLength += 5;
    if (props.contentType !== undefined) propertiesLength += 3 + Buffer.byteLength(props.contentType);
    if (props.responseTopic !== undefined) propertiesLength += 3 + Buffer.byteLength(props.responseTopic);
    if (props.correlationData !== undefined) propertiesLength += 3 + props.correlationData.length;
    for (const id of props.subscriptionIdentifiers ?? []) propertiesLength += 1 + varintLength(id);
    if (props.topicAlias !== undefined) propertiesLength += 3;
    for (const [name, value] of props.userProperties ?? []) {
      propertiesLength += 5 + Buffer.byteLength(name) + Buffer.byteLength(value);
    }
  }
  const remaining =
    2 +
    topicLength +
    (publish.qos > 0 ? 2 : 0) +
    (protocolVersion === 5 ? varintLength(propertiesLength) + propertiesLength : 0) +
    publish.payload.length;
  const buffer = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  buffer[0] = 0x30 | (publish.dup ? 8 : 0) | (publish.qos << 1) | (publish.retain ? 1 : 0);
  let at = writeVarint(buffer, 1, remaining);
  at = writeString(buffer, at, publish.topic);
  if (publish.qos > 0) at = buffer.writeUInt16BE(publish.messageId!, at);
  if (protocolVersion === 5) at = writeVarint(buffer, at, propertiesLength);
  if (props) {
    if (props.payloadFormatIndicator !== undefined) {
      buffer[at++] = 0x01;
      buffer[at++] = props.payloadFormatIndicator ? 1 : 0;
    }
    if (props.messageExpiryInterval !== undefined) {
      buffer[at++] = 0x02;
      at = buffer.writeUInt32BE(props.messageExpiryInterval, at);
    }
    if (props.contentType !== undefined) {
      buffer[at++] = 0x03;
      at = writeString(buffer, at, props.contentType);
    }
    if (props.responseTopic !== undefined) {
      buffer[at++] = 0x08;
      at = writeString(buffer, at, props.responseTopic);
    }
    if (props.correlationData !== undefined) {
      buffer[at++] = 0x09;
      at = buffer.writeUInt16BE(props.correlationData.length, at);
      at += props.correlationData.copy(buffer, at);
    }
    for (const id of props.subscriptionIdentifiers ?? []) {
      buffer[at++] = 0x0b;
      at = writeVarint(buffer, at, id);
    }
    if (props.topicAlias !== undefined) {
      buffer[at++] = 0x23;
      at = buffer.writeUInt16BE(props.topicAlias, at);
    }
    for (const [name, value] of props.userProperties ?? []) {
      buffer[at++] = 0x26;
      at = writeString(buffer, at, name);
      at = writeString(buffer, at, value);
    }
  }
  publish.payload.copy(buffer, at);
  return buffer;
}

function varintLength(value: number): number {
  return value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;
}

function writeVarint(buffer: Buffer, at: number, value: number): number {
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    buffer[at++] = byte;
  } while (value > 0);
  return at;
}

/** Writes a length-prefixed UTF-8 string; the buffer has room for it, measured before. */
function writeString(buffer: Buffer, at: number, text: string): number {
  const length = buffer.write(text, at + 2, 'utf8');
  buffer.writeUInt16BE(length, at);
  return at + 2 + length;
}
