import { isUtf8 } from 'node:buffer';
import { malformed } from './errors.js';

/** Offset of the variable header: after the type byte and the remaining-length integer. */
export function bodyOffset(frame: Buffer): number {
  let at = 1;
  while (frame[at]! & 0x80) at++;
  return at + 1;
}

/**
 * Reads the fields of one complete packet in order. Reading past the packet's end, a variable
 * byte integer longer than 4 bytes or longer than its value needs, or a string that is not UTF-8
 * throws a malformed-packet {@link MqttCodecError}, so a check reads as the packet's layout.
 */
export class FrameReader {
  at: number;

  constructor(readonly frame: Buffer) {
    this.at = bodyOffset(frame);
  }

  /** Bytes left after the read position. */
  get left(): number {
    return this.frame.length - this.at;
  }

  byte(what: string): number {
    this.need(1, what);
    return this.frame[this.at++]!;
  }

  uint16(what: string): number {
    this.need(2, what);
    const value = this.frame.readUInt16BE(this.at);
    this.at += 2;
    return value;
  }

  uint32(what: string): number {
    this.need(4, what);
    const value = this.frame.readUInt32BE(this.at);
    this.at += 4;
    return value;
  }

  /**
   * A variable byte integer in as few bytes as its value needs (MQTT-1.5.5-1): a last byte of 0
   * after others means padding, refused as Mosquitto does inside packets. The remaining length in
   * the fixed header is read elsewhere and, as by Mosquitto, may be padded.
   */
  varint(what: string): number {
    let value = 0;
    let multiplier = 1;
    for (let bytes = 0; bytes < 4; bytes++) {
      const byte = this.byte(what);
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && bytes > 0) throw malformed(`${what} is a variable byte integer with padding`);
        return value;
      }
      multiplier *= 128;
    }
    throw malformed(`${what} is a variable byte integer longer than 4 bytes`);
  }

  /**
   * A UTF-8 string (MQTT 5 section 1.5.4): well-formed and without U+0000. Returns the offset of
   * its first byte; the read position is then past its last.
   */
  string(what: string): number {
    const start = this.skipBinary(what);
    const bytes = this.frame.subarray(start, this.at);
    if (!isUtf8(bytes) || bytes.includes(0)) throw malformed(`${what} is not valid UTF-8 or contains U+0000`);
    return start;
  }

  /** Length-prefixed bytes; returns the offset of the first. */
  skipBinary(what: string): number {
    const length = this.uint16(what);
    this.need(length, what);
    const start = this.at;
    this.at += length;
    return start;
  }

  /** The packet has to end here. */
  end(what: string): void {
    const extra = this.frame.length - this.at;
    if (extra !== 0) {
      throw malformed(`${what} has ${extra} byte${extra === 1 ? '' : 's'} after its last field`);
    }
  }

  private need(bytes: number, what: string): void {
    if (this.frame.length - this.at < bytes) throw malformed(`packet ends inside its ${what}`);
  }
}
