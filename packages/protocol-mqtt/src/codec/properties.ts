import { malformed, protocolError } from './errors.js';
import type { FrameReader } from './frame-reader.js';

/**
 * MQTT 5 properties on the wire (section 2.2.2.2): which packet may carry which, checked strictly
 * because mqtt-packet takes any known property anywhere, keeps the last of a repeated one (or
 * makes an array of it) and decodes bad UTF-8 leniently.
 */

/** Where a property section sits: a packet type, or the will properties of CONNECT. */
const PLACES = {
  CONNECT: 1 << 0,
  CONNACK: 1 << 1,
  PUBLISH: 1 << 2,
  'will properties': 1 << 3,
  PUBACK: 1 << 4,
  PUBREC: 1 << 5,
  PUBREL: 1 << 6,
  PUBCOMP: 1 << 7,
  SUBSCRIBE: 1 << 8,
  SUBACK: 1 << 9,
  UNSUBSCRIBE: 1 << 10,
  UNSUBACK: 1 << 11,
  DISCONNECT: 1 << 12,
  AUTH: 1 << 13,
} as const;

export type PropertyPlace = keyof typeof PLACES;

/** How a property's value is encoded; `flag` is a byte that may only be 0 or 1. */
type ValueType = 'flag' | 'uint16' | 'uint32' | 'varint' | 'string' | 'binary' | 'pair';

const MESSAGE: PropertyPlace[] = ['PUBLISH', 'will properties'];
const ACKS: PropertyPlace[] = ['PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP'];
const WITH_REASON: PropertyPlace[] = ['CONNACK', ...ACKS, 'SUBACK', 'UNSUBACK', 'DISCONNECT', 'AUTH'];

/** MQTT 5 table 2-4: identifier, name, value type, where it may appear. */
const TABLE: Array<[number, string, ValueType, PropertyPlace[]]> = [
  [0x01, 'Payload Format Indicator', 'flag', MESSAGE],
  [0x02, 'Message Expiry Interval', 'uint32', MESSAGE],
  [0x03, 'Content Type', 'string', MESSAGE],
  [0x08, 'Response Topic', 'string', MESSAGE],
  [0x09, 'Correlation Data', 'binary', MESSAGE],
  [0x0b, 'Subscription Identifier', 'varint', ['PUBLISH', 'SUBSCRIBE']],
  [0x11, 'Session Expiry Interval', 'uint32', ['CONNECT', 'CONNACK', 'DISCONNECT']],
  [0x12, 'Assigned Client Identifier', 'string', ['CONNACK']],
  [0x13, 'Server Keep Alive', 'uint16', ['CONNACK']],
  [0x15, 'Authentication Method', 'string', ['CONNECT', 'CONNACK', 'AUTH']],
  [0x16, 'Authentication Data', 'binary', ['CONNECT', 'CONNACK', 'AUTH']],
  [0x17, 'Request Problem Information', 'flag', ['CONNECT']],
  [0x18, 'Will Delay Interval', 'uint32', ['will properties']],
  [0x19, 'Request Response Information', 'flag', ['CONNECT']],
  [0x1a, 'Response Information', 'string', ['CONNACK']],
  [0x1c, 'Server Reference', 'string', ['CONNACK', 'DISCONNECT']],
  [0x1f, 'Reason String', 'string', WITH_REASON],
  [0x21, 'Receive Maximum', 'uint16', ['CONNECT', 'CONNACK']],
  [0x22, 'Topic Alias Maximum', 'uint16', ['CONNECT', 'CONNACK']],
  [0x23, 'Topic Alias', 'uint16', ['PUBLISH']],
  [0x24, 'Maximum QoS', 'flag', ['CONNACK']],
  [0x25, 'Retain Available', 'flag', ['CONNACK']],
  [
    0x26,
    'User Property',
    'pair',
    ['CONNECT', 'will properties', 'PUBLISH', 'SUBSCRIBE', 'UNSUBSCRIBE', ...WITH_REASON],
  ],
  [0x27, 'Maximum Packet Size', 'uint32', ['CONNECT', 'CONNACK']],
  [0x28, 'Wildcard Subscription Available', 'flag', ['CONNACK']],
  [0x29, 'Subscription Identifier Available', 'flag', ['CONNACK']],
  [0x2a, 'Shared Subscription Available', 'flag', ['CONNACK']],
];

interface PropertyRule {
  name: string;
  type: ValueType;
  places: number;
}

const RULES: Array<PropertyRule | undefined> = [];
for (const [id, name, type, places] of TABLE) {
  RULES[id] = { name, type, places: places.reduce((mask, place) => mask | PLACES[place], 0) };
}

const USER_PROPERTY = 0x26;
const SUBSCRIPTION_IDENTIFIER = 0x0b;
const RESPONSE_TOPIC = 0x08;
const PLUS = 0x2b;
const HASH = 0x23;

/**
 * Checks the property section at the reader's position and moves past it. A property another
 * packet type carries or that runs past the section is a malformed packet; a property given
 * twice (only User Property, and Subscription Identifier in PUBLISH, may repeat), a flag other
 * than 0 or 1, or a Response Topic with a wildcard is a protocol error.
 */
export function checkProperties(reader: FrameReader, place: PropertyPlace): void {
  const length = reader.varint('property length');
  if (length === 0) return;
  const end = reader.at + length;
  if (end > reader.frame.length) throw malformed(`${place} property length runs past the packet`);
  const mask = PLACES[place];
  // Identifiers go up to 0x2a: two 32-bit words of seen flags.
  let seenLow = 0;
  let seenHigh = 0;
  while (reader.at < end) {
    const id = reader.byte('property identifier');
    const rule = RULES[id];
    if (rule === undefined) throw malformed(`unknown property identifier 0x${id.toString(16)}`);
    if ((rule.places & mask) === 0) throw malformed(`${rule.name} is not allowed in ${place}`);
    const bit = 1 << (id & 31);
    const seen = id < 32 ? seenLow & bit : seenHigh & bit;
    if (seen !== 0 && id !== USER_PROPERTY && !(id === SUBSCRIPTION_IDENTIFIER && place === 'PUBLISH')) {
      throw protocolError(`${rule.name} more than once in ${place}`);
    }
    if (id < 32) seenLow |= bit;
    else seenHigh |= bit;
    readValue(reader, id, rule);
    if (reader.at > end) throw malformed(`${rule.name} runs past the ${place} property length`);
  }
}

function readValue(reader: FrameReader, id: number, rule: PropertyRule): void {
  switch (rule.type) {
    case 'flag':
      if (reader.byte(rule.name) > 1) throw protocolError(`${rule.name} is neither 0 nor 1`);
      return;
    case 'uint16':
      reader.uint16(rule.name);
      return;
    case 'uint32':
      reader.uint32(rule.name);
      return;
    case 'varint':
      reader.varint(rule.name);
      return;
    case 'binary':
      reader.skipBinary(rule.name);
      return;
    case 'pair':
      reader.string(`${rule.name} name`);
      reader.string(`${rule.name} value`);
      return;
    case 'string': {
      const start = reader.string(rule.name);
      if (id === RESPONSE_TOPIC) {
        const topic = reader.frame.subarray(start, reader.at);
        // MQTT-3.3.2-14: a response topic is a topic name, never a filter.
        if (topic.includes(PLUS) || topic.includes(HASH)) throw protocolError(`${rule.name} has a wildcard`);
      }
      return;
    }
  }
}

/** The User Properties of the (already checked) section at the reader's position, in order. */
export function readUserProperties(reader: FrameReader): Array<[name: string, value: string]> {
  const found: Array<[string, string]> = [];
  const length = reader.varint('property length');
  const end = reader.at + length;
  const { frame } = reader;
  while (reader.at < end) {
    const id = reader.byte('property identifier');
    if (id === USER_PROPERTY) {
      const name = reader.string('User Property name');
      const nameEnd = reader.at;
      const value = reader.string('User Property value');
      found.push([frame.toString('utf8', name, nameEnd), frame.toString('utf8', value, reader.at)]);
    } else readValue(reader, id, RULES[id]!);
  }
  return found;
}
