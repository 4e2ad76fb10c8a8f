import type { IPublishPacket } from 'mqtt-packet';

export type {
  IAuthPacket,
  IConnackPacket,
  IConnectPacket,
  IDisconnectPacket,
  IPingreqPacket,
  IPingrespPacket,
  IPubackPacket,
  IPubcompPacket,
  IPublishPacket,
  IPubrecPacket,
  IPubrelPacket,
  ISubackPacket,
  ISubscribePacket,
  ISubscription,
  IUnsubackPacket,
  IUnsubscribePacket,
  Packet,
  PacketCmd,
  QoS,
  UserProperties,
} from 'mqtt-packet';

/** The protocol level byte of CONNECT: 3 is MQTT 3.1, 4 is 3.1.1, 5 is 5.0. */
export type ProtocolVersion = 3 | 4 | 5;

/** Properties of a PUBLISH (MQTT 5). */
export type PublishProperties = NonNullable<IPublishPacket['properties']>;
