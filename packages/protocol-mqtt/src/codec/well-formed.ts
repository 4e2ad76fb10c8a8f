import { isUtf8 } from 'node:buffer';
import type { Packet } from 'mqtt-packet';
import { malformed, MqttCodecError, protocolError } from './errors.js';
import { bodyOffset, FrameReader } from './frame-reader.js';
import { checkProperties, type PropertyPlace } from './properties.js';

/**
 * What mqtt-packet lets through and MQTT forbids, checked against the bytes of a packet it
 * decoded: fields missing or left over, packet identifier 0 (MQTT-2.2.1-3), strings that are not
 * UTF-8 or contain U+0000 (MQTT 5 section 1.5.4, which mqtt-packet decodes leniently), and
 * property sections (see {@link checkProperties}). Returns the first problem, or null.
 */
export function checkPacket(packet: Packet, frame: Buffer, version: number): MqttCodecError | null {
  try {
    check(packet, frame, version);
    return null;
  } catch (error) {
    if (error instanceof MqttCodecError) return error;
    throw error;
  }
}

function check(packet: Packet, frame: Buffer, version: number): void {
  const v5 = version === 5;
  switch (packet.cmd) {
    case 'publish': {
      checkTopicName(packet.topic, frame);
      // The common case, QoS 0 before MQTT 5, has nothing else to check: the rest is payload.
      if (packet.qos === 0 && !v5) return;
      const reader = new FrameReader(frame);
      reader.skipBinary('topic name');
      if (packet.qos > 0) packetId(reader, 'PUBLISH');
      if (v5) checkProperties(reader, 'PUBLISH');
      return;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      const name = packet.cmd.toUpperCase() as PropertyPlace;
      const reader = new FrameReader(frame);
      packetId(reader, name);
      if (v5 && reader.left > 0) {
        reader.byte('reason code');
        if (reader.left > 0) checkProperties(reader, name);
      }
      return reader.end(name);
    }
    case 'subscribe':
    case 'unsubscribe': {
      const name = packet.cmd.toUpperCase() as PropertyPlace;
      const reader = new FrameReader(frame);
      packetId(reader, name);
      if (v5) checkProperties(reader, name);
      while (reader.left > 0) {
        reader.string('topic filter');
        if (packet.cmd === 'subscribe') reader.byte('subscription options');
      }
      return;
    }
    case 'connect':
      return checkConnect(packet, frame);
    case 'pingreq':
    case 'pingresp':
      return new FrameReader(frame).end(packet.cmd.toUpperCase());
    case 'disconnect':
    case 'auth': {
      const name = packet.cmd.toUpperCase() as PropertyPlace;
      const reader = new FrameReader(frame);
      if (v5 && reader.left > 0) {
        reader.byte('reason code');
        if (reader.left > 0) checkProperties(reader, name);
      }
      return reader.end(name);
    }
    case 'connack': {
      const reader = new FrameReader(frame);
      reader.byte('acknowledge flags');
      reader.byte('reason code');
      if (v5 && reader.left > 0) checkProperties(reader, 'CONNACK');
      return reader.end('CONNACK');
    }
    case 'suback':
    case 'unsuback': {
      const name = packet.cmd.toUpperCase() as PropertyPlace;
      const reader = new FrameReader(frame);
      packetId(reader, name);
      if (v5) checkProperties(reader, name);
      // The rest is one reason code per filter, which mqtt-packet checks.
      return;
    }
  }
}

/**
 * Why mqtt-packet refused an MQTT 5 SUBSCRIBE, read from its bytes. It reports every bad
 * Subscription Options byte as malformed, but only reserved bits set are (MQTT-3.8.3-5): QoS 3
 * and Retain Handling 3 are protocol errors (MQTT 5 section 3.8.3.1). Null when no options byte
 * is at fault.
 */
export function subscriptionOptionsProblem(frame: Buffer): MqttCodecError | null {
  try {
    const reader = new FrameReader(frame);
    packetId(reader, 'SUBSCRIBE');
    checkProperties(reader, 'SUBSCRIBE');
    while (reader.left > 0) {
      reader.string('topic filter');
      const options = reader.byte('subscription options');
      if (options & 0xc0) return malformed('subscription options with reserved bits set');
      if ((options & 0x03) === 3) return protocolError('subscription asks for QoS 3');
      if (((options >> 4) & 0x03) === 3) return protocolError('subscription asks for Retain Handling 3');
    }
    return null;
  } catch (error) {
    if (error instanceof MqttCodecError) return error;
    throw error;
  }
}

function packetId(reader: FrameReader, name: string): void {
  if (reader.uint16(`${name} packet identifier`) === 0) throw malformed(`${name} has packet identifier 0`);
}

/** mqtt-packet turns bad UTF-8 into U+FFFD: only a decoded U+FFFD needs a look at the bytes. */
function checkTopicName(topic: string, frame: Buffer): void {
  if (topic.includes('\u0000')) throw malformed('topic name contains U+0000');
  if (topic.includes('\uFFFD')) {
    const at = bodyOffset(frame);
    const length = frame.readUInt16BE(at);
    if (!isUtf8(frame.subarray(at + 2, at + 2 + length))) throw malformed('topic name is not valid UTF-8');
  }
}

function checkConnect(packet: Extract<Packet, { cmd: 'connect' }>, frame: Buffer): void {
  const reader = new FrameReader(frame);
  reader.skipBinary('protocol name'); // its value is checked by mqtt-packet
  const version = reader.byte('protocol level') & 0x7f;
  const flags = reader.byte('connect flags');
  reader.uint16('keep alive');
  if (version === 5) {
    checkProperties(reader, 'CONNECT');
    const props = packet.properties;
    if (props?.authenticationData !== undefined && props.authenticationMethod === undefined) {
      throw protocolError('Authentication Data without an Authentication Method');
    }
  }
  reader.string('client id');
  if (flags & 0x04) {
    if (version === 5) checkProperties(reader, 'will properties');
    reader.string('will topic');
    reader.skipBinary('will payload');
  }
  if (flags & 0x80) reader.string('user name');
  if (flags & 0x40) reader.skipBinary('password');
  reader.end('CONNECT');
}
