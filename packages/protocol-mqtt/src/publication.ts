import type { Message, MessageHeader } from '@robustmq/core';
import { encodePublish, type PublishFieldProperties } from './codec/encode.js';
import type { IPublishPacket, PublishProperties, QoS } from './codec/packets.js';
import type { UserPropertyList } from './codec/user-properties.js';
import { headersOf, propertiesOf } from './message-headers.js';

/** PUBLISH encodings: MQTT 3.1 and 3.1.1 share one (4); MQTT 5 adds properties (5). */
export type WireFamily = 4 | 5;

/** The MQTT 5 properties that travel with a message from publisher to subscribers unchanged. */
export interface CarriedProperties {
  payloadFormatIndicator?: boolean;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  /** In the order the publisher sent them (MQTT-3.3.2-18). */
  userProperties?: UserPropertyList;
}

/**
 * One message routed by the broker, shared by every delivery of it. It keeps the bytes it arrived
 * as when they can be forwarded unchanged, and caches the QoS 0 encodings it was sent in, so a
 * fan-out encodes at most once per wire format.
 */
export class Publication {
  /** Encoded QoS 0 PUBLISH packets: [v3 live, v3 retained, v5 live, v5 retained]. */
  private frames: Array<Buffer | undefined> | null = null;
  /** Encoded QoS 0 MQTT 5 PUBLISH packets with a known topic alias, by alias and RETAIN. */
  private aliasFrames: Map<number, Buffer> | null = null;
  /**
   * The Message Expiry Interval the cached MQTT 5 frames carry: they are good only while it is
   * still the remaining one, as a retained message is sent for far longer than a second.
   */
  private framesExpiry = -1;
  private detached = false;
  /**
   * Names the message across the brokers of a cluster (set where it entered), so that a session
   * moving between brokers gets it once; null on a broker alone.
   */
  uid: string | null = null;
  /**
   * A QoS 2 message from a persistent session: after a broker crash it may be routed again from
   * the publisher's session log (see `publish.ts`), so a session that already has it (by
   * {@link uid}) drops the repeat.
   */
  exactlyOnce = false;

  constructor(
    readonly topic: string,
    public payload: Buffer,
    readonly qos: QoS,
    readonly retain: boolean,
    readonly properties: CarriedProperties | undefined,
    /** When the message expires (MQTT 5 Message Expiry Interval), ms since the epoch; 0 never. */
    readonly expiresAt: number,
    /** Client id of the publisher (for no-local), null when it came from elsewhere. */
    readonly publisherId: string | null,
    /**
     * The received PUBLISH, when it is a QoS 0 packet without RETAIN or a topic alias, i.e. what
     * a subscriber of the same wire family would receive byte for byte.
     */
    private sourceFrame: Buffer | null,
    private readonly sourceFamily: WireFamily,
    readonly timestamp: number,
  ) {}

  /**
   * Builds the publication for a PUBLISH a client sent, with its User Properties in order (read
   * from the received bytes: the packet object groups them).
   */
  static fromPacket(
    packet: IPublishPacket,
    topic: string,
    publisherId: string,
    userProperties: UserPropertyList | undefined,
    frame: Buffer | null,
    family: WireFamily,
    now: number,
  ): Publication {
    const props = packet.properties;
    let carried: CarriedProperties | undefined;
    let expiresAt = 0;
    if (props) {
      carried = carriedProperties(props, userProperties);
      if (props.messageExpiryInterval !== undefined) expiresAt = now + props.messageExpiryInterval * 1000;
    }
    return new Publication(
      topic,
      packet.payload as Buffer,
      packet.qos,
      packet.retain,
      carried,
      expiresAt,
      publisherId,
      frame,
      family,
      now,
    );
  }

  /**
   * Builds the publication for a message another protocol published on the router, delivered on
   * `topic` (the message's own, or the MQTT topic a binding's record key names).
   */
  static fromMessage(message: Message, qos: QoS, now: number, topic = message.topic): Publication {
    const payload = Buffer.isBuffer(message.payload)
      ? message.payload
      : Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
    return new Publication(
      topic,
      payload,
      qos,
      false,
      propertiesOf(message.headers),
      0,
      null,
      null,
      4,
      message.timestamp || now,
    );
  }

  isExpired(now: number): boolean {
    return this.expiresAt !== 0 && now >= this.expiresAt;
  }

  /**
   * Copies the payload out of the socket chunk it points into, before the message is kept for
   * longer than one delivery (retained or queued), so a kept message does not pin the chunk.
   */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.sourceFrame = null;
    if (this.payload.byteLength !== this.payload.buffer.byteLength) this.payload = Buffer.from(this.payload);
    if (this.properties?.correlationData) {
      this.properties.correlationData = Buffer.from(this.properties.correlationData);
    }
  }

  /** The QoS 0 PUBLISH for a subscriber of `family`, forwarded or encoded once and shared. */
  qos0Frame(family: WireFamily, retain: boolean, now: number): Buffer {
    if (!retain && family === this.sourceFamily && this.sourceFrame !== null) return this.sourceFrame;
    if (family === 5) this.keepFramesCurrent(now);
    const slot = (family === 5 ? 2 : 0) + (retain ? 1 : 0);
    const frames = (this.frames ??= []);
    return (frames[slot] ??= this.encode(family, 0, 0, false, retain, null, now));
  }

  /**
   * The QoS 0 MQTT 5 PUBLISH carrying only topic alias `alias` (the client knows the topic),
   * encoded once per alias and shared by every client that uses that alias for this topic.
   */
  aliasedQos0Frame(alias: number, retain: boolean, now: number): Buffer {
    this.keepFramesCurrent(now);
    const key = alias * 2 + (retain ? 1 : 0);
    const frames = (this.aliasFrames ??= new Map<number, Buffer>());
    let frame = frames.get(key);
    if (frame === undefined) {
      frame = this.encode(5, 0, 0, false, retain, null, now, { alias, known: true });
      frames.set(key, frame);
    }
    return frame;
  }

  /** Forgets the cached MQTT 5 frames once the remaining expiry they carry has changed. */
  private keepFramesCurrent(now: number): void {
    if (this.expiresAt === 0) return;
    const remaining = this.remainingExpiry(now);
    if (remaining === this.framesExpiry) return;
    this.framesExpiry = remaining;
    if (this.frames !== null) this.frames[2] = this.frames[3] = undefined;
    this.aliasFrames = null;
  }

  /** The Message Expiry Interval to send at `now`, in whole seconds rounded up. */
  private remainingExpiry(now: number): number {
    return Math.max(0, Math.ceil((this.expiresAt - now) / 1000));
  }

  /**
   * Encodes a PUBLISH of this message for one delivery; with `alias` (MQTT 5), it carries that
   * topic alias, and an empty topic name when the client already knows the alias.
   */
  encode(
    family: WireFamily,
    qos: QoS,
    packetId: number,
    dup: boolean,
    retain: boolean,
    subscriptionIds: readonly number[] | null,
    now: number,
    alias?: { alias: number; known: boolean },
  ): Buffer {
    let properties: PublishFieldProperties | undefined;
    if (family === 5 && (this.properties || this.expiresAt !== 0 || subscriptionIds || alias)) {
      properties = { ...this.properties };
      if (alias) properties.topicAlias = alias.alias;
      if (this.expiresAt !== 0) {
        properties.messageExpiryInterval = this.remainingExpiry(now);
      }
      if (subscriptionIds) properties.subscriptionIdentifiers = subscriptionIds;
    }
    return encodePublish(
      {
        topic: alias?.known ? '' : this.topic,
        payload: this.payload,
        qos,
        messageId: packetId,
        dup,
        retain,
        ...(properties ? { properties } : {}),
      },
      family,
    );
  }

  /** This message as the router carries it to other protocols. */
  toMessage(): Message {
    return new RoutedMessage(this);
  }
}

function carriedProperties(
  props: PublishProperties,
  userProperties: UserPropertyList | undefined,
): CarriedProperties | undefined {
  const carried: CarriedProperties = {};
  let any = false;
  if (props.payloadFormatIndicator !== undefined) {
    carried.payloadFormatIndicator = props.payloadFormatIndicator;
    any = true;
  }
  if (props.contentType !== undefined) {
    carried.contentType = props.contentType;
    any = true;
  }
  if (props.responseTopic !== undefined) {
    carried.responseTopic = props.responseTopic;
    any = true;
  }
  if (props.correlationData !== undefined) {
    carried.correlationData = props.correlationData;
    any = true;
  }
  if (userProperties !== undefined && userProperties.length > 0) {
    carried.userProperties = userProperties;
    any = true;
  }
  return any ? carried : undefined;
}

/** A Publication seen through the router's Message; headers (user properties and more) built on demand. */
class RoutedMessage implements Message {
  readonly topic: string;
  readonly key = null;
  readonly payload: Uint8Array;
  readonly timestamp: number;
  private built: MessageHeader[] | null = null;

  constructor(private readonly publication: Publication) {
    this.topic = publication.topic;
    this.payload = publication.payload;
    this.timestamp = publication.timestamp;
  }

  get headers(): readonly MessageHeader[] {
    return (this.built ??= headersOf(this.publication.properties));
  }
}
