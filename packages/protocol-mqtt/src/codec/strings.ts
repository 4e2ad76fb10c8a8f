import { isUtf8 } from 'node:buffer';
import type { Packet } from 'mqtt-packet';
import { malformed, type MqttCodecError } from './errors.js';

/**
 * MQTT strings must be well-formed UTF-8 without U+0000 (MQTT 5 section 1.5.4). mqtt-packet
 * decodes leniently, turning bad bytes into U+FFFD, so the names a broker acts on (client id,
 * user name, will topic, topic names and filters) are checked here against the frame's bytes.
 */
export function checkStrings(packet: Packet, frame: Buffer, version: number): MqttCodecError | null {
  switch (packet.cmd) {
    case 'publish':
      if (packet.topic.includes('\u0000')) return malformed('topic name contains U+0000');
      if (packet.topic.includes('\uFFFD')) {
        const at = bodyOffset(frame);
        const length = frame.readUInt16BE(at);
        if (!isUtf8(frame.subarray(at + 2, at + 2 + length)))
          return malformed('topic name is not valid UTF-8');
      }
      return null;
    case 'subscribe':
    case 'unsubscribe':
      return checkFilters(frame, version, packet.cmd === 'subscribe');
    case 'connect':
      return checkConnect(frame);
    default:
      return null;
  }
}

/** Offset of the variable header: after the type byte and the remaining-length integer. */
export function bodyOffset(frame: Buffer): number {
  let at = 1;
  while (frame[at]! & 0x80) at++;
  return at + 1;
}

class Cursor {
  constructor(
    readonly frame: Buffer,
    public at: number,
  ) {}

  skip(bytes: number): void {
    this.at += bytes;
  }

  varint(): number {
    let value = 0;
    let multiplier = 1;
    let byte: number;
    do {
      byte = this.frame[this.at++] ?? 0;
      value += (byte & 0x7f) * multiplier;
      multiplier *= 128;
    } while (byte & 0x80 && multiplier <= 128 ** 3);
    return value;
  }

  /** Reads a length-prefixed string and reports whether it is valid UTF-8 without U+0000. */
  string(): boolean {
    const length = this.frame.readUInt16BE(this.at);
    const bytes = this.frame.subarray(this.at + 2, this.at + 2 + length);
    this.at += 2 + length;
    return isUtf8(bytes) && !bytes.includes(0);
  }

  binary(): void {
    this.at += 2 + this.frame.readUInt16BE(this.at);
  }
}

function checkFilters(frame: Buffer, version: number, withOptions: boolean): MqttCodecError | null {
  const c = new Cursor(frame, bodyOffset(frame) + 2);
  if (version === 5) c.skip(c.varint());
  while (c.at < frame.length) {
    if (!c.string()) return malformed('topic filter is not valid UTF-8 or contains U+0000');
    if (withOptions) c.skip(1);
  }
  return null;
}

function checkConnect(frame: Buffer): MqttCodecError | null {
  const c = new Cursor(frame, bodyOffset(frame));
  c.binary(); // protocol name, checked by mqtt-packet
  const version = frame[c.at]! & 0x7f;
  const flags = frame[c.at + 1]!;
  c.skip(4); // version, flags, keep alive
  if (version === 5) c.skip(c.varint());
  if (!c.string()) return malformed('client id is not valid UTF-8 or contains U+0000');
  if (flags & 0x04) {
    if (version === 5) c.skip(c.varint());
    if (!c.string()) return malformed('will topic is not valid UTF-8 or contains U+0000');
    c.binary();
  }
  if (flags & 0x80 && !c.string()) return malformed('user name is not valid UTF-8 or contains U+0000');
  return null;
}
