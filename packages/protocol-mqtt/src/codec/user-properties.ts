import { FrameReader } from './frame-reader.js';
import { readUserProperties } from './properties.js';

/**
 * MQTT 5 User Properties in the order they were sent; a name may appear more than once. The
 * order is part of the message (MQTT-3.3.2-18), but mqtt-packet's `userProperties` object groups
 * the values of a repeated name, so these read them from the packet's bytes.
 */
export type UserPropertyList = ReadonlyArray<readonly [name: string, value: string]>;

/** The User Properties of a PUBLISH the parser accepted, in order. */
export function publishUserProperties(frame: Buffer): UserPropertyList {
  const reader = new FrameReader(frame);
  const qos = (frame[0]! >> 1) & 3;
  reader.skipBinary('topic name');
  if (qos > 0) reader.uint16('packet identifier');
  return readUserProperties(reader);
}

/** The User Properties of the will in an MQTT 5 CONNECT the parser accepted, in order. */
export function willUserProperties(frame: Buffer): UserPropertyList {
  const reader = new FrameReader(frame);
  reader.skipBinary('protocol name');
  reader.at += 4; // protocol level, connect flags, keep alive
  const connectProperties = reader.varint('property length');
  reader.at += connectProperties;
  reader.skipBinary('client id');
  return readUserProperties(reader);
}
