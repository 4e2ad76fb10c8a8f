import type { Packet } from 'mqtt-packet';
import { malformed, MqttCodecError } from './errors.js';
import { decodeFrame } from './frame-decoder.js';
import type { ProtocolVersion } from './packets.js';
import { ReasonCode } from './reason-codes.js';
import { checkPacket, subscriptionOptionsProblem } from './well-formed.js';

/** The largest packet MQTT can express: 1 type byte, 4 length bytes, 268,435,455 body bytes. */
export const MAX_PACKET_SIZE = 268_435_460;

/**
 * The flag bits each packet type must carry (MQTT 5 table 2-3); PUBLISH (3) has its own, and
 * type 0 is reserved (-1 never matches).
 */
const REQUIRED_FLAGS = [-1, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

export interface PacketParserOptions {
  /**
   * Largest accepted packet in bytes, counting the fixed header (as MQTT 5's Maximum Packet Size
   * does). A bigger packet is refused as soon as its length is read, before its body arrives.
   */
  maxPacketSize?: number;
  /** Version of the packets to expect; a server leaves it unset and learns it from CONNECT. */
  protocolVersion?: ProtocolVersion;
  /**
   * Called for each packet, with the exact bytes it arrived as (a view into the input chunk), so
   * a broker can forward a PUBLISH without encoding it again.
   */
  onPacket: (packet: Packet, frame: Buffer) => void;
  /** Called once for the first bad packet; the parser ignores all input after it. */
  onError: (error: MqttCodecError) => void;
}

/**
 * Splits a byte stream into MQTT packets and decodes each with mqtt-packet. One per connection.
 * Packets are delivered synchronously from {@link PacketParser.parse}.
 */
export class PacketParser {
  private readonly maxPacketSize: number;
  private readonly onPacket: PacketParserOptions['onPacket'];
  private readonly onError: PacketParserOptions['onError'];
  private frame: Buffer | null = null;
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** Total length of the packet being buffered, once its header has been read. */
  private needed = -1;
  private failed = false;
  private fed = false;
  private version: ProtocolVersion | undefined;

  constructor(options: PacketParserOptions) {
    this.maxPacketSize = options.maxPacketSize ?? MAX_PACKET_SIZE;
    this.onPacket = options.onPacket;
    this.onError = options.onError;
    this.version = options.protocolVersion;
  }

  /** The version packets are decoded as: set by the option or by the CONNECT packet seen. */
  get protocolVersion(): ProtocolVersion | undefined {
    return this.version;
  }

  /** Whether any input has been fed. */
  get started(): boolean {
    return this.fed;
  }

  /** Whether a bad packet has been seen; further input is ignored. */
  get hasFailed(): boolean {
    return this.failed;
  }

  /** Feeds bytes from the stream; complete packets are reported before this returns. */
  parse(chunk: Buffer): void {
    if (this.failed) return;
    this.fed = true;
    let data = chunk;
    if (this.partsLength > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.needed > 0 && this.partsLength < this.needed) return;
      data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
    }
    this.needed = -1;
    let offset = 0;
    const end = data.length;
    while (offset < end) {
      const type = data[offset]!;
      if (type >> 4 !== 3 && (type & 0x0f) !== REQUIRED_FLAGS[type >> 4]) {
        // Known at the first byte: no need to wait for a body that may never come.
        this.fail(malformed(`invalid fixed header byte 0x${type.toString(16).padStart(2, '0')}`));
        return;
      }
      let length = 0;
      let multiplier = 1;
      let at = offset + 1;
      let complete = false;
      while (at < end) {
        const byte = data[at++]!;
        length += (byte & 0x7f) * multiplier;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
        multiplier *= 128;
        if (at - offset > 4) {
          this.fail(malformed('remaining length is longer than 4 bytes'));
          return;
        }
      }
      if (!complete) break;
      const total = at - offset + length;
      if (total > this.maxPacketSize) {
        this.fail(
          new MqttCodecError(
            ReasonCode.PacketTooLarge,
            `packet of ${total} bytes is over the maximum of ${this.maxPacketSize}`,
          ),
        );
        return;
      }
      if (end - offset < total) {
        this.needed = total;
        break;
      }
      this.frame = data.subarray(offset, offset + total);
      offset += total;
      const packet = this.decode(this.frame);
      if (packet !== null) this.decoded(packet);
      this.frame = null;
      if (this.failed) return;
    }
    if (offset < end) {
      this.parts.push(offset === 0 ? data : data.subarray(offset));
      this.partsLength = end - offset;
    }
  }

  /** Decodes one whole packet with mqtt-packet; null when it reported an error. */
  private decode(frame: Buffer): Packet | null {
    if (frame.length === 2 && frame[0] === 0xf0 && this.version === 5) {
      // An AUTH of Remaining Length 0 means reason 0x00 without properties (MQTT 5 section
      // 3.15.2.1); mqtt-packet cannot read that form.
      return { cmd: 'auth', reasonCode: 0 };
    }
    try {
      return decodeFrame(frame, this.version);
    } catch (error) {
      // Bad input must not escape as an exception, whatever mqtt-packet makes of it.
      const options = this.version === 5 && frame[0] === 0x82 ? subscriptionOptionsProblem(frame) : null;
      this.fail(options ?? malformed((error as Error).message));
      return null;
    }
  }

  private decoded(packet: Packet): void {
    const frame = this.frame!;
    if (packet.cmd === 'connect') {
      this.version = packet.protocolVersion ?? 4;
      if (packet.will && (packet.will.qos as number) > 2) return this.fail(malformed('will QoS is 3'));
    }
    const problem = checkPacket(packet, frame, this.version ?? 4);
    if (problem) return this.fail(problem);
    this.onPacket(packet, frame);
  }

  private fail(error: MqttCodecError): void {
    if (this.failed) return;
    this.failed = true;
    this.parts = [];
    this.partsLength = 0;
    this.onError(error);
  }
}
