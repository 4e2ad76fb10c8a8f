import type { Message, MessageHeader } from '@robustmq/core';

/**
 * How an AMQP message is kept in the unified namespace. The payload is the body's bytes as a
 * Kafka or MQTT client expects them; everything else AMQP-specific travels in headers, each
 * section as the encoded bytes it arrived in, so the bare message goes back out unaltered.
 */
export const AmqpHeader = {
  /** The encoded `header` section (durable, priority, ttl, first-acquirer, delivery-count). */
  header: 'amqp-header',
  /** The encoded `message-annotations` section. */
  messageAnnotations: 'amqp-message-annotations',
  /** The encoded `properties` section (message-id, to, reply-to, correlation-id, ...). */
  properties: 'amqp-properties',
  /** The encoded `application-properties` section. */
  applicationProperties: 'amqp-application-properties',
  /** The encoded `footer` section. */
  footer: 'amqp-footer',
  /**
   * How the payload maps to the body: absent for one `data` section (the payload is its bytes),
   * `string` or `binary` for an `amqp-value` of that type (the payload is the value), `sections`
   * when the payload holds the encoded body sections themselves.
   */
  body: 'amqp-body',
  /** Milliseconds since the epoch after which the message is not delivered (from ttl or absolute-expiry-time). */
  expiresAt: 'amqp-expires-at',
  /** The message priority, 0 to 255, when not the default 4. */
  priority: 'amqp-priority',
  /** Name of the queue a dead-lettered message was rejected on. */
  deadLetteredFrom: 'amqp-dead-lettered-from',
} as const;

const AMQP_HEADER_PREFIX = 'amqp-';
/** The header other protocols carry a content type in (MQTT 5 Content Type, a Kafka header). */
const CONTENT_TYPE = 'content-type';
/** The message annotation a record's key is delivered in. */
const KEY_ANNOTATION = 'x-opt-kafka-key';

const SECTION = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
  sequence: 0x76,
  value: 0x77,
  footer: 0x78,
} as const;

const SYMBOLIC_SECTIONS: Readonly<Record<string, number>> = {
  'amqp:header:list': 0x70,
  'amqp:delivery-annotations:map': 0x71,
  'amqp:message-annotations:map': 0x72,
  'amqp:properties:list': 0x73,
  'amqp:application-properties:map': 0x74,
  'amqp:data:binary': 0x75,
  'amqp:amqp-sequence:list': 0x76,
  'amqp:value:*': 0x77,
  'amqp:footer:map': 0x78,
};

/** The message could not be split into AMQP sections. */
export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError';
}

function need(buffer: Uint8Array, end: number): void {
  if (end > buffer.length) throw new MalformedMessageError('message ends inside an encoded value');
}

/** Position after the encoded value at `pos` (AMQP 1.0 types, part 1.2: width by constructor). */
export function skipValue(buffer: Buffer, pos: number): number {
  need(buffer, pos + 1);
  const code = buffer[pos]!;
  if (code === 0x00) return skipValue(buffer, skipValue(buffer, pos + 1));
  const start = pos + 1;
  let end: number;
  switch (code >> 4) {
    case 0x4:
      end = start;
      break;
    case 0x5:
      end = start + 1;
      break;
    case 0x6:
      end = start + 2;
      break;
    case 0x7:
      end = start + 4;
      break;
    case 0x8:
      end = start + 8;
      break;
    case 0x9:
      end = start + 16;
      break;
    case 0xa:
    case 0xc:
    case 0xe:
      need(buffer, start + 1);
      end = start + 1 + buffer[start]!;
      break;
    case 0xb:
    case 0xd:
    case 0xf:
      need(buffer, start + 4);
      end = start + 4 + buffer.readUInt32BE(start);
      break;
    default:
      throw new MalformedMessageError(`invalid type constructor 0x${code.toString(16)}`);
  }
  need(buffer, end);
  return end;
}

function sectionCode(buffer: Buffer, pos: number): number {
  if (buffer[pos] !== 0x00) throw new MalformedMessageError('a message section must be a described type');
  const descriptor = buffer[pos + 1];
  if (descriptor === 0x53) return buffer[pos + 2] ?? -1;
  if (descriptor === 0x80) {
    need(buffer, pos + 10);
    return Number(buffer.readBigUInt64BE(pos + 2));
  }
  if (descriptor === 0xa3) {
    const length = buffer[pos + 2] ?? 0;
    need(buffer, pos + 3 + length);
    return SYMBOLIC_SECTIONS[buffer.toString('latin1', pos + 3, pos + 3 + length)] ?? -1;
  }
  return -1;
}

/** Where the value of a described section starts. */
function valueStart(buffer: Buffer, pos: number): number {
  return skipValue(buffer, pos + 1);
}

export interface Sections {
  header?: Buffer;
  messageAnnotations?: Buffer;
  properties?: Buffer;
  applicationProperties?: Buffer;
  body: Buffer[];
  bodyCode: number;
  footer?: Buffer;
  /**
   * The whole encoded message, when it can go out to consumers as it came: its sections in the
   * standard order and none dropped (no delivery-annotations).
   */
  wire?: Buffer;
}

/** Splits an encoded message into its sections; delivery-annotations are dropped (they are per hop). */
export function splitSections(buffer: Buffer): Sections {
  const sections: Sections = { body: [], bodyCode: -1 };
  let pos = 0;
  let previous = -1;
  let inOrder = true;
  while (pos < buffer.length) {
    const code = sectionCode(buffer, pos);
    const end = skipValue(buffer, pos);
    const slice = buffer.subarray(pos, end);
    // Only body sections may repeat; anything else out of the standard order is re-encoded.
    if (code < previous || (code === previous && code !== SECTION.data && code !== SECTION.sequence)) {
      inOrder = false;
    }
    previous = code;
    switch (code) {
      case SECTION.header:
        sections.header = slice;
        break;
      case SECTION.deliveryAnnotations:
        inOrder = false;
        break;
      case SECTION.messageAnnotations:
        sections.messageAnnotations = slice;
        break;
      case SECTION.properties:
        sections.properties = slice;
        break;
      case SECTION.applicationProperties:
        sections.applicationProperties = slice;
        break;
      case SECTION.data:
      case SECTION.sequence:
      case SECTION.value:
        if (sections.bodyCode !== -1 && (sections.bodyCode !== code || code === SECTION.value)) {
          throw new MalformedMessageError('a message body mixes section types');
        }
        sections.bodyCode = code;
        sections.body.push(slice);
        break;
      case SECTION.footer:
        sections.footer = slice;
        break;
      default:
        throw new MalformedMessageError(`unknown message section ${code}`);
    }
    pos = end;
  }
  if (inOrder && sections.bodyCode !== -1) sections.wire = buffer;
  return sections;
}

/** The fields of the `header` section. */
export interface HeaderFields {
  durable: boolean;
  priority: number;
  ttl: number | null;
  firstAcquirer: boolean;
  deliveryCount: number;
}

const DEFAULT_HEADER: HeaderFields = {
  durable: false,
  priority: 4,
  ttl: null,
  firstAcquirer: false,
  deliveryCount: 0,
};

function readScalar(buffer: Buffer, pos: number): boolean | number | null {
  switch (buffer[pos]) {
    case 0x40:
      return null;
    case 0x41:
      return true;
    case 0x42:
      return false;
    case 0x56:
      return buffer[pos + 1] === 1;
    case 0x50:
    case 0x52:
      return buffer[pos + 1] ?? 0;
    case 0x43:
      return 0;
    case 0x70:
      return buffer.readUInt32BE(pos + 1);
    default:
      return null;
  }
}

/** The header section's fields in their encoded order. */
const HEADER_FIELDS: readonly (keyof HeaderFields)[] = [
  'durable',
  'priority',
  'ttl',
  'firstAcquirer',
  'deliveryCount',
];

/** Reads an encoded `header` section (as kept under {@link AmqpHeader.header}). */

export function readHeader(section: Buffer | undefined): HeaderFields {
  const fields = { ...DEFAULT_HEADER };
  if (!section) return fields;
  let pos = valueStart(section, 0);
  const list = section[pos];
  let count: number;
  if (list === 0x45) return fields;
  if (list === 0xc0) {
    count = section[pos + 2] ?? 0;
    pos += 3;
  } else if (list === 0xd0) {
    count = section.readUInt32BE(pos + 5);
    pos += 9;
  } else {
    throw new MalformedMessageError('the header section is not a list');
  }
  for (let i = 0; i < count && i < HEADER_FIELDS.length; i++) {
    const value = readScalar(section, pos);
    const name = HEADER_FIELDS[i]!;
    if (value !== null) (fields as Record<string, unknown>)[name] = value;
    pos = skipValue(section, pos);
  }
  return fields;
}

/** Encodes a `header` section. */
export function writeHeader(fields: HeaderFields): Buffer {
  const ttl = fields.ttl === null ? Buffer.from([0x40]) : Buffer.from([0x70, 0, 0, 0, 0]);
  if (fields.ttl !== null) ttl.writeUInt32BE(fields.ttl, 1);
  const count = Buffer.from([0x70, 0, 0, 0, 0]);
  count.writeUInt32BE(fields.deliveryCount, 1);
  const items = Buffer.concat([
    Buffer.from([fields.durable ? 0x41 : 0x42, 0x50, fields.priority]),
    ttl,
    Buffer.from([fields.firstAcquirer ? 0x41 : 0x42]),
    count,
  ]);
  return Buffer.concat([Buffer.from([0x00, 0x53, 0x70, 0xc0, items.length + 1, 5]), items]);
}

/** A data section or binary/string value, in the short encoding when it fits (as encoders write it). */
function encodeBinarySection(code: number, type: 0xb0 | 0xb1, bytes: Uint8Array): Buffer {
  if (bytes.length <= 0xff) {
    return Buffer.concat([Buffer.from([0x00, 0x53, code, type - 0x10, bytes.length]), bytes]);
  }
  const head = Buffer.from([0x00, 0x53, code, type, 0, 0, 0, 0]);
  head.writeUInt32BE(bytes.length, 4);
  return Buffer.concat([head, bytes]);
}

/** A string or binary value: the short encoding when it fits, as encoders write it. */
function encodeVariable(code: 0xa0 | 0xa1 | 0xa3, bytes: Uint8Array): Buffer {
  if (bytes.length <= 0xff) return Buffer.concat([Buffer.from([code, bytes.length]), bytes]);
  const head = Buffer.from([code + 0x10, 0, 0, 0, 0]);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** A described map or list section of `count` encoded items. */
function encodeCompoundSection(code: number, type: 0xd0 | 0xd1, count: number, items: Buffer): Buffer {
  const head = Buffer.from([0x00, 0x53, code, type, 0, 0, 0, 0, 0, 0, 0, 0]);
  head.writeUInt32BE(items.length + 4, 4);
  head.writeUInt32BE(count, 8);
  return Buffer.concat([head, items]);
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function isUtf8(bytes: Uint8Array): boolean {
  try {
    utf8Decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Headers as an `application-properties` section: UTF-8 values as strings, others as binary. */
function encodeApplicationProperties(entries: readonly MessageHeader[]): Buffer {
  const parts: Buffer[] = [];
  for (const { key, value } of entries) {
    parts.push(
      encodeVariable(0xa1, Buffer.from(key, 'utf8')),
      encodeVariable(isUtf8(value) ? 0xa1 : 0xa0, value),
    );
  }
  return encodeCompoundSection(SECTION.applicationProperties, 0xd1, entries.length * 2, Buffer.concat(parts));
}

/** The `properties` of a message from another protocol: its content type and creation time. */
function encodeForeignProperties(contentType: Uint8Array | undefined, timestamp: number): Buffer {
  const creation = Buffer.alloc(9);
  creation[0] = 0x83;
  creation.writeBigInt64BE(BigInt(Math.trunc(timestamp)), 1);
  const nulls = (n: number) => Buffer.alloc(n, 0x40);
  const items = Buffer.concat([
    nulls(PROPERTY_CONTENT_TYPE),
    contentType === undefined ? nulls(1) : encodeVariable(0xa3, contentType),
    nulls(PROPERTY_CREATION_TIME - PROPERTY_CONTENT_TYPE - 1),
    creation,
  ]);
  return encodeCompoundSection(SECTION.properties, 0xd0, PROPERTY_CREATION_TIME + 1, items);
}

/** The `message-annotations` of a record with a key: the key's bytes under `x-opt-kafka-key`. */
function encodeKeyAnnotation(key: Uint8Array): Buffer {
  const items = Buffer.concat([
    encodeVariable(0xa3, Buffer.from(KEY_ANNOTATION, 'latin1')),
    encodeVariable(0xa0, key),
  ]);
  return encodeCompoundSection(SECTION.messageAnnotations, 0xd1, 2, items);
}

/** A producer's message split into sections, with what routing and lifetime need from them. */
export interface Incoming {
  sections: Sections;
  /** The `to` property: the address on the anonymous relay. */
  to: string | undefined;
  /** Absolute expiry from the properties, ms since the epoch. */
  absoluteExpiry: number | undefined;
  /** String-valued application properties, also kept as plain headers for other protocols. */
  stringProperties: Readonly<Record<string, string>>;
  /** Binary-valued application properties, also kept as plain headers (their bytes). */
  binaryProperties: Readonly<Record<string, Buffer>>;
  /** The `content-type` property, kept as the `content-type` header for other protocols. */
  contentType: string | undefined;
}

/** The items of an encoded list or map at `pos`: where the first starts and how many there are. */
function compound(buffer: Buffer, pos: number): { first: number; count: number } {
  switch (buffer[pos]) {
    case 0x45:
      return { first: pos + 1, count: 0 };
    case 0xc0:
    case 0xc1:
      need(buffer, pos + 3);
      return { first: pos + 3, count: buffer[pos + 2]! };
    case 0xd0:
    case 0xd1:
      need(buffer, pos + 9);
      return { first: pos + 9, count: buffer.readUInt32BE(pos + 5) };
    default:
      throw new MalformedMessageError(
        `expected a list or map, found constructor 0x${(buffer[pos] ?? 0).toString(16)}`,
      );
  }
}

/** The string at `pos` (str8 or str32), or undefined for anything else. */
function readString(buffer: Buffer, pos: number): string | undefined {
  const code = buffer[pos];
  if (code === 0xa1) return buffer.toString('utf8', pos + 2, pos + 2 + buffer[pos + 1]!);
  if (code === 0xb1) return buffer.toString('utf8', pos + 5, pos + 5 + buffer.readUInt32BE(pos + 1));
  return undefined;
}

/** The symbol at `pos` (sym8 or sym32), or undefined for anything else. */
function readSymbol(buffer: Buffer, pos: number): string | undefined {
  const code = buffer[pos];
  if (code === 0xa3) return buffer.toString('latin1', pos + 2, pos + 2 + buffer[pos + 1]!);
  if (code === 0xb3) return buffer.toString('latin1', pos + 5, pos + 5 + buffer.readUInt32BE(pos + 1));
  return undefined;
}

/** The bytes of the binary at `pos` (vbin8 or vbin32), or undefined for anything else. */
function readBinary(buffer: Buffer, pos: number): Buffer | undefined {
  const code = buffer[pos];
  if (code === 0xa0) return buffer.subarray(pos + 2, pos + 2 + buffer[pos + 1]!);
  if (code === 0xb0) return buffer.subarray(pos + 5, pos + 5 + buffer.readUInt32BE(pos + 1));
  return undefined;
}

/** The application properties of a message that has none (most): one shared, empty object. */
const NO_PROPERTIES: Record<string, never> = Object.freeze({});

const PROPERTY_TO = 2;
const PROPERTY_CONTENT_TYPE = 6;
const PROPERTY_ABSOLUTE_EXPIRY = 8;
const PROPERTY_CREATION_TIME = 9;

/**
 * Splits a transfer's payload and reads the few fields the broker acts on, without decoding the
 * rest: `to`, `content-type` and `absolute-expiry-time` from the properties, string and binary
 * application properties.
 */
export function parseIncoming(raw: Buffer): Incoming {
  const sections = splitSections(raw);
  let to: string | undefined;
  let contentType: string | undefined;
  let absoluteExpiry: number | undefined;
  let stringProperties: Record<string, string> = NO_PROPERTIES;
  let binaryProperties: Record<string, Buffer> = NO_PROPERTIES;
  const properties = sections.properties;
  if (properties) {
    const { first, count } = compound(properties, valueStart(properties, 0));
    let pos = first;
    for (let i = 0; i < count && i <= PROPERTY_ABSOLUTE_EXPIRY; i++) {
      if (i === PROPERTY_TO) to = readString(properties, pos);
      if (i === PROPERTY_CONTENT_TYPE) contentType = readSymbol(properties, pos);
      if (i === PROPERTY_ABSOLUTE_EXPIRY && properties[pos] === 0x83) {
        absoluteExpiry = Number(properties.readBigInt64BE(pos + 1));
      }
      pos = skipValue(properties, pos);
    }
  }
  const application = sections.applicationProperties;
  if (application) {
    stringProperties = {};
    binaryProperties = {};
    const { first, count } = compound(application, valueStart(application, 0));
    let pos = first;
    for (let i = 0; i + 1 < count; i += 2) {
      const key = readString(application, pos);
      pos = skipValue(application, pos);
      const value = readString(application, pos);
      const binary = value === undefined ? readBinary(application, pos) : undefined;
      pos = skipValue(application, pos);
      if (key === undefined) continue;
      if (value !== undefined) stringProperties[key] = value;
      else if (binary !== undefined) binaryProperties[key] = binary;
    }
  }
  return { sections, to, absoluteExpiry, stringProperties, binaryProperties, contentType };
}

/**
 * Text as bytes of their own. `Buffer.from` takes small buffers from Node's shared 8 KiB pool, and
 * one kept with a message keeps the whole slab alive for as long as a queue holds the message.
 */
function text(value: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(value));
  bytes.write(value);
  return bytes;
}

/** The kinds of body a message's `amqp-body` header names, shared by every message (never written to). */
const BODY_KIND = { string: text('string'), binary: text('binary'), sections: text('sections') };

/** Header values made from text, all in one piece of memory of the message's own (see {@link text}). */
function pushTexts(headers: MessageHeader[], texts: ReadonlyArray<readonly [string, string]>): void {
  if (texts.length === 0) return;
  let total = 0;
  for (const [, value] of texts) total += Buffer.byteLength(value);
  const bytes = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const [key, value] of texts) {
    const written = bytes.write(value, at);
    headers.push({ key, value: bytes.subarray(at, at + written) });
    at += written;
  }
}

/**
 * Messages stored from an AMQP transfer whose bytes can be delivered as they came, saving their
 * re-encoding on first delivery (the common case: delivered from memory right after the append).
 */
const wireForms = new WeakMap<Message, Buffer>();

/**
 * The unified-namespace message for an AMQP transfer: the body's bytes as payload, the sections
 * as headers (see {@link AmqpHeader}), string and binary application properties also as plain
 * headers, the content type as the `content-type` header (docs/cross-protocol.md).
 */
export function toStoredMessage(topic: string, incoming: Incoming, now: number): Message {
  const sections = incoming.sections;
  const headers: MessageHeader[] = [];
  if (sections.header) headers.push({ key: AmqpHeader.header, value: sections.header });
  if (sections.messageAnnotations)
    headers.push({ key: AmqpHeader.messageAnnotations, value: sections.messageAnnotations });
  if (sections.properties) headers.push({ key: AmqpHeader.properties, value: sections.properties });
  if (sections.applicationProperties)
    headers.push({ key: AmqpHeader.applicationProperties, value: sections.applicationProperties });
  if (sections.footer) headers.push({ key: AmqpHeader.footer, value: sections.footer });

  let payload: Buffer;
  const only = sections.body.length === 1 ? sections.body[0]! : null;
  const start = only ? valueStart(only, 0) : 0;
  const type = only ? only[start] : undefined;
  if (only && sections.bodyCode === SECTION.data && (type === 0xa0 || type === 0xb0)) {
    payload = only.subarray(start + (type === 0xa0 ? 2 : 5));
  } else if (only && sections.bodyCode === SECTION.value && (type === 0xa1 || type === 0xb1)) {
    payload = only.subarray(start + (type === 0xa1 ? 2 : 5));
    headers.push({ key: AmqpHeader.body, value: BODY_KIND.string });
  } else if (only && sections.bodyCode === SECTION.value && (type === 0xa0 || type === 0xb0)) {
    payload = only.subarray(start + (type === 0xa0 ? 2 : 5));
    headers.push({ key: AmqpHeader.body, value: BODY_KIND.binary });
  } else {
    // Copied out of the pool, as `text` is.
    payload = Buffer.allocUnsafeSlow(sections.body.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of sections.body) at += part.copy(payload, at);
    headers.push({ key: AmqpHeader.body, value: BODY_KIND.sections });
  }

  const header = readHeader(sections.header);
  let expiresAt = header.ttl !== null && header.ttl > 0 ? now + header.ttl : Infinity;
  if (incoming.absoluteExpiry !== undefined && incoming.absoluteExpiry > 0) {
    expiresAt = Math.min(expiresAt, incoming.absoluteExpiry);
  }
  const texts: Array<readonly [string, string]> = [];
  if (expiresAt !== Infinity) texts.push([AmqpHeader.expiresAt, String(expiresAt)]);
  if (header.priority !== 4) texts.push([AmqpHeader.priority, String(header.priority)]);
  for (const [key, value] of Object.entries(incoming.stringProperties)) {
    if (!key.startsWith(AMQP_HEADER_PREFIX)) texts.push([key, value]);
  }
  pushTexts(headers, texts);
  for (const [key, value] of Object.entries(incoming.binaryProperties)) {
    if (!key.startsWith(AMQP_HEADER_PREFIX)) headers.push({ key, value });
  }
  if (incoming.contentType !== undefined)
    headers.push({ key: CONTENT_TYPE, value: text(incoming.contentType) });
  const message: Message = { topic, key: null, payload, headers, timestamp: now };
  // A ttl goes out as what remains of it (see toTransferPayload), so never as it came.
  if (sections.wire && !hasTtl(header)) wireForms.set(message, sections.wire);
  return message;
}

function headerValue(message: Message, key: string): Uint8Array | undefined {
  for (const header of message.headers) if (header.key === key) return header.value;
  return undefined;
}

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** What delivery needs to know about a stored message without decoding it again. */
export interface DeliveryFacts {
  priority: number;
  expiresAt: number;
}

export function deliveryFacts(message: Message): DeliveryFacts {
  const priority = headerValue(message, AmqpHeader.priority);
  const expiresAt = headerValue(message, AmqpHeader.expiresAt);
  return {
    priority: priority ? Number(Buffer.from(priority).toString()) : 4,
    expiresAt: expiresAt ? Number(Buffer.from(expiresAt).toString()) : Infinity,
  };
}

const hasTtl = (header: HeaderFields) => header.ttl !== null && header.ttl > 0;

const MAX_UINT = 0xffff_ffff;

/** What a queue knows of a message's deliveries before this one (AMQP 1.0 section 3.2.1). */
export interface EarlierDeliveries {
  /** Deliveries of it here that failed. */
  readonly deliveryCount: number;
  /** Whether it went to a consumer here before, which may have acquired it. */
  readonly redelivered: boolean;
}

/**
 * The header a message goes out with (AMQP 1.0 section 3.2.1): its delivery-count raised by the
 * deliveries that failed here, its first-acquirer false once it went to a consumer here before
 * (true claims that no link acquired it yet), and its ttl reduced by the time it was held here
 * (from its arrival, the message's timestamp), as an intermediary should so that a message looping
 * between brokers dies; at least 1 ms, as 0 would be taken for no ttl. Null when it goes out as it
 * came.
 */
function outgoingHeader(
  header: Uint8Array | undefined,
  earlier: EarlierDeliveries,
  arrived: number,
  now: number,
) {
  const fields = readHeader(header ? asBuffer(header) : undefined);
  const set = fields.ttl;
  const ttl = set !== null && set > 0 ? Math.max(1, Math.min(set, arrived + set - now)) : set;
  const firstAcquirer = fields.firstAcquirer && !earlier.redelivered;
  if (earlier.deliveryCount === 0 && ttl === set && firstAcquirer === fields.firstAcquirer) return null;
  return writeHeader({
    ...fields,
    ttl,
    firstAcquirer,
    deliveryCount: Math.min(MAX_UINT, fields.deliveryCount + earlier.deliveryCount),
  });
}

/**
 * The transfer payload for a stored message at `now`: its sections back in order, the header
 * rewritten for earlier deliveries and the time held (see {@link outgoingHeader}). A message from
 * another protocol (one without AMQP sections) becomes one `data` section, with its headers as
 * application properties, its `content-type` header and timestamp as the `content-type` and
 * `creation-time` properties, and its key as the message annotation `x-opt-kafka-key`.
 */
export function toTransferPayload(message: Message, earlier: EarlierDeliveries, now = Date.now()): Buffer {
  if (earlier.deliveryCount === 0 && !earlier.redelivered) {
    const wire = wireForms.get(message);
    if (wire) return wire;
  }
  const parts: Buffer[] = [];
  const header = headerValue(message, AmqpHeader.header);
  if (header || earlier.deliveryCount > 0) {
    const rewritten = outgoingHeader(header, earlier, message.timestamp, now);
    if (rewritten) parts.push(rewritten);
    else if (header) parts.push(asBuffer(header));
  }
  const foreign = !message.headers.some((h) => h.key.startsWith(AMQP_HEADER_PREFIX));
  if (foreign) {
    if (message.key !== null) parts.push(encodeKeyAnnotation(message.key));
    parts.push(encodeForeignProperties(headerValue(message, CONTENT_TYPE), message.timestamp));
    const plain = message.headers.filter((h) => h.key !== CONTENT_TYPE);
    if (plain.length > 0) parts.push(encodeApplicationProperties(plain));
  } else {
    for (const key of [
      AmqpHeader.messageAnnotations,
      AmqpHeader.properties,
      AmqpHeader.applicationProperties,
    ]) {
      const section = headerValue(message, key);
      if (section) parts.push(asBuffer(section));
    }
  }
  const body = headerValue(message, AmqpHeader.body);
  const kind = body ? Buffer.from(body).toString() : 'data';
  if (kind === 'sections') parts.push(asBuffer(message.payload));
  else if (kind === 'string') parts.push(encodeBinarySection(SECTION.value, 0xb1, message.payload));
  else if (kind === 'binary') parts.push(encodeBinarySection(SECTION.value, 0xb0, message.payload));
  else parts.push(encodeBinarySection(SECTION.data, 0xb0, message.payload));
  const footer = headerValue(message, AmqpHeader.footer);
  if (footer) parts.push(asBuffer(footer));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * A message another broker passed on as its transfer payload (what {@link toTransferPayload} gave
 * there): it is sent as it came, with no sections to read back.
 */
export function relayedMessage(topic: string, wire: Buffer): Message {
  const message: Message = { topic, key: null, payload: wire, headers: [], timestamp: 0 };
  wireForms.set(message, wire);
  return message;
}

/** Adds or replaces one header. */
export function withHeader(message: Message, key: string, value: string): Message {
  return {
    ...message,
    headers: [...message.headers.filter((h) => h.key !== key), { key, value: text(value) }],
  };
}
