/**
 * The MQTT 3.1 / 3.1.1 / 5.0 wire codec on mqtt-packet: a per-connection parser with a maximum
 * packet size and the strict checks mqtt-packet leaves out (UTF-8, properties, packet layout),
 * encoders, User Properties in order, reason codes and the packet types. It imports nothing else
 * of RobustMQ, so clients and tools can use it alone.
 */
export {
  encodeAck,
  encodePacket,
  encodePacketWithin,
  encodePublish,
  writePacket,
  type PublishFieldProperties,
  type PublishFields,
} from './encode.js';
export { MqttCodecError } from './errors.js';
export type * from './packets.js';
export { MAX_PACKET_SIZE, PacketParser, type PacketParserOptions } from './parser.js';
export { ConnectReturnCode, ReasonCode, SUBACK_FAILURE } from './reason-codes.js';
export { publishUserProperties, willUserProperties, type UserPropertyList } from './user-properties.js';
