import type { Principal } from '@robustmq/core';
import type { IConnectPacket, QoS, UserProperties } from './codec/packets.js';
import { willUserProperties, type UserPropertyList } from './codec/user-properties.js';
import { Publication, type CarriedProperties } from './publication.js';
import { storedUserProperties } from './stored-message.js';
import { LongTimer } from './timers.js';

/** A client's Will Message, from its CONNECT. */
export interface Will {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: CarriedProperties | undefined;
  /** MQTT 5 Message Expiry Interval of the will, in seconds. */
  messageExpiryInterval: number | undefined;
  /** MQTT 5 Will Delay Interval, in seconds; 0 publishes at once. */
  delayInterval: number;
}

/** The will of a CONNECT; `frame` is the CONNECT's bytes, where its User Properties keep their order. */
export function willFromConnect(will: NonNullable<IConnectPacket['will']>, frame: Buffer): Will {
  const props = will.properties;
  let carried: CarriedProperties | undefined;
  if (props) {
    carried = {};
    if (props.payloadFormatIndicator !== undefined)
      carried.payloadFormatIndicator = props.payloadFormatIndicator;
    if (props.contentType !== undefined) carried.contentType = props.contentType;
    if (props.responseTopic !== undefined) carried.responseTopic = props.responseTopic;
    if (props.correlationData !== undefined) carried.correlationData = Buffer.from(props.correlationData);
    if (props.userProperties !== undefined) carried.userProperties = willUserProperties(frame);
  }
  return {
    topic: will.topic,
    payload: Buffer.from(will.payload),
    qos: will.qos ?? 0,
    retain: will.retain ?? false,
    properties: carried,
    messageExpiryInterval: props?.messageExpiryInterval,
    delayInterval: props?.willDelayInterval ?? 0,
  };
}

/** The will as a message from its client. */
export function willPublication(will: Will, clientId: string, now: number): Publication {
  return new Publication(
    will.topic,
    will.payload,
    will.qos,
    will.retain,
    will.properties,
    will.messageExpiryInterval === undefined ? 0 : now + will.messageExpiryInterval * 1000,
    clientId,
    null,
    4,
    now,
  );
}

/** A will as kept in a persistent session's record, with who may publish it. */
export interface StoredWill {
  topic: string;
  /** Payload, base64. */
  payload: string;
  qos: QoS;
  retain: boolean;
  messageExpiryInterval?: number;
  delayInterval: number;
  payloadFormatIndicator?: boolean;
  contentType?: string;
  responseTopic?: string;
  /** Correlation data, base64. */
  correlationData?: string;
  /** User properties in order, as [name, value] pairs. */
  userPropertyList?: UserPropertyList;
  /** User properties as versions up to 0.1.0 stored them (grouped by name): still read. */
  userProperties?: UserProperties;
  /** The principal the client authenticated as: the will is authorized as it. */
  principal: Principal;
}

export function storeWill(will: Will, principal: Principal): StoredWill {
  const stored: StoredWill = {
    topic: will.topic,
    payload: will.payload.toString('base64'),
    qos: will.qos,
    retain: will.retain,
    delayInterval: will.delayInterval,
    principal,
  };
  if (will.messageExpiryInterval !== undefined) stored.messageExpiryInterval = will.messageExpiryInterval;
  const props = will.properties;
  if (props?.payloadFormatIndicator !== undefined)
    stored.payloadFormatIndicator = props.payloadFormatIndicator;
  if (props?.contentType !== undefined) stored.contentType = props.contentType;
  if (props?.responseTopic !== undefined) stored.responseTopic = props.responseTopic;
  if (props?.correlationData !== undefined) stored.correlationData = props.correlationData.toString('base64');
  if (props?.userProperties !== undefined) stored.userPropertyList = props.userProperties;
  return stored;
}

export function loadWill(stored: StoredWill): Will {
  const carried: CarriedProperties = {};
  if (stored.payloadFormatIndicator !== undefined)
    carried.payloadFormatIndicator = stored.payloadFormatIndicator;
  if (stored.contentType !== undefined) carried.contentType = stored.contentType;
  if (stored.responseTopic !== undefined) carried.responseTopic = stored.responseTopic;
  if (stored.correlationData !== undefined) {
    carried.correlationData = Buffer.from(stored.correlationData, 'base64');
  }
  const userProperties = storedUserProperties(stored);
  if (userProperties !== undefined) carried.userProperties = userProperties;
  return {
    topic: stored.topic,
    payload: Buffer.from(stored.payload, 'base64'),
    qos: stored.qos,
    retain: stored.retain,
    properties: Object.keys(carried).length > 0 ? carried : undefined,
    messageExpiryInterval: stored.messageExpiryInterval,
    delayInterval: stored.delayInterval,
  };
}

/**
 * A will waiting out its delay (MQTT 5 section 3.1.3.2): published when the delay passes or the
 * session ends, whichever is first; dropped if the client reconnects to the session in time.
 */
export class PendingWill {
  private readonly timer: LongTimer;
  private done = false;

  constructor(
    delayMs: number,
    private readonly publish: () => void,
    /** The will and its principal, for the session record. */
    readonly stored: StoredWill,
  ) {
    this.timer = new LongTimer(delayMs, () => this.fire());
  }

  /** Whether it is still waiting. */
  get pending(): boolean {
    return !this.done;
  }

  /** Publishes now (the session ended). */
  fire(): void {
    if (this.done) return;
    this.done = true;
    this.timer.cancel();
    this.publish();
  }

  /** The client came back: no will. */
  cancel(): void {
    this.done = true;
    this.timer.cancel();
  }
}
