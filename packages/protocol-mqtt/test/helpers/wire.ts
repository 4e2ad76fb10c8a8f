/** Exact MQTT bytes for tests, including ones no encoder would produce. */

type Bytes = Buffer | number[];

const bytes = (part: Bytes) => (Buffer.isBuffer(part) ? part : Buffer.from(part));

/** A variable byte integer. */
export function varint(value: number): Buffer {
  const out: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return Buffer.from(out);
}

/** A length-prefixed string (or any bytes in its place). */
export function str(text: string | Buffer): Buffer {
  const body = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body]);
}

/** A property section: its length, then the properties as given. */
export function properties(...parts: Bytes[]): Buffer {
  const body = Buffer.concat(parts.map(bytes));
  return Buffer.concat([varint(body.length), body]);
}

/** A User Property (0x26) as it appears in a property section. */
export function userProperty(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x26]), str(name), str(value)]);
}

/** A whole packet: its first byte, the remaining length, the body parts. */
export function packet(first: number, ...body: Bytes[]): Buffer {
  const rest = Buffer.concat(body.map(bytes));
  return Buffer.concat([Buffer.from([first]), varint(rest.length), rest]);
}

/**
 * A CONNECT with a clean start and keep-alive 60: MQTT 5 with the given property sections (none
 * given: empty ones), a will if asked, then `trailing` bytes after its last field.
 */
export function connectPacket(
  version: 4 | 5,
  clientId: string,
  options: {
    properties?: Buffer;
    will?: { properties?: Buffer; topic: string; qos?: 0 | 1 | 2 };
    trailing?: Bytes;
  } = {},
): Buffer {
  const v5 = version === 5;
  const flags = 0x02 | (options.will ? 0x04 | ((options.will.qos ?? 0) << 3) : 0);
  return packet(
    0x10,
    str('MQTT'),
    [version, flags, 0, 60],
    v5 ? (options.properties ?? properties()) : [],
    str(clientId),
    options.will
      ? Buffer.concat([
          v5 ? (options.will.properties ?? properties()) : Buffer.alloc(0),
          str(options.will.topic),
          str('will payload'),
        ])
      : [],
    options.trailing ?? [],
  );
}
