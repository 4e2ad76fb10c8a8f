import { parser as createParser, type Packet, type Parser } from 'mqtt-packet';
import { decodeCommonPacket } from './common-packets.js';
import type { ProtocolVersion } from './packets.js';

/**
 * Decodes whole MQTT frames with mqtt-packet. Its parser is a stream object of about 2 KB, with
 * buffers of its own; since every frame reaches it whole and is decoded before `decode` returns,
 * one parser per protocol version serves every connection of the process rather than one each.
 */
class SharedDecoder {
  private parser: Parser | null = null;
  private packet: Packet | null = null;
  private error: Error | null = null;

  constructor(private readonly version: ProtocolVersion | undefined) {}

  /** The packet in `frame`, which holds exactly one; throws what mqtt-packet finds wrong. */
  decode(frame: Buffer): Packet {
    const parser = this.parser ?? this.open();
    try {
      parser.parse(frame);
    } catch (error) {
      this.parser = null;
      throw error;
    }
    const { packet, error } = this;
    this.packet = null;
    this.error = null;
    // A parser that failed may hold part of the frame, and one that read a CONNECT takes that
    // CONNECT's version for what follows: neither is used again.
    if (error !== null || packet === null || packet.cmd === 'connect') this.parser = null;
    if (error !== null) throw error;
    if (packet === null) throw new Error('packet shorter than its remaining length says');
    return packet;
  }

  private open(): Parser {
    const parser = createParser(this.version === undefined ? {} : { protocolVersion: this.version });
    parser.on('packet', (packet: Packet) => (this.packet = packet));
    parser.on('error', (error: Error) => (this.error ??= error));
    this.parser = parser;
    return parser;
  }
}

const decoders = new Map<ProtocolVersion | undefined, SharedDecoder>();

/**
 * Decodes one whole frame as `version` (undefined: a server's first packet, whose CONNECT says
 * the version). Throws on bad input.
 */
export function decodeFrame(frame: Buffer, version: ProtocolVersion | undefined): Packet {
  if (version !== undefined) {
    const packet = decodeCommonPacket(frame, version);
    if (packet !== null) return packet;
  }
  let decoder = decoders.get(version);
  if (decoder === undefined) {
    decoder = new SharedDecoder(version);
    decoders.set(version, decoder);
  }
  return decoder.decode(frame);
}
