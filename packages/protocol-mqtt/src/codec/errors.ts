import { ReasonCode } from './reason-codes.js';

/**
 * Bytes that are not a valid MQTT packet, or a packet over the maximum size. `reasonCode` is the
 * MQTT 5 reason code a server sends in its DISCONNECT (0x81 malformed, 0x82 protocol error,
 * 0x95 packet too large); an MQTT 3 server closes the connection instead.
 */
export class MqttCodecError extends Error {
  readonly reasonCode: number;

  constructor(reasonCode: number, message: string) {
    super(message);
    this.name = 'MqttCodecError';
    this.reasonCode = reasonCode;
  }
}

export const malformed = (message: string): MqttCodecError =>
  new MqttCodecError(ReasonCode.MalformedPacket, message);

export const protocolError = (message: string): MqttCodecError =>
  new MqttCodecError(ReasonCode.ProtocolError, message);
