import { generate, writeToStream, type Packet } from 'mqtt-packet';
import type { ProtocolVersion } from './packets.js';

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
