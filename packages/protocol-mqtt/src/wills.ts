import type { IConnectPacket, QoS } from './codec/packets.js';
import { Publication, type CarriedProperties } from './publication.js';
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

export function willFromConnect(will: NonNullable<IConnectPacket['will']>): Will {
  const props = will.properties;
  let carried: CarriedProperties | undefined;
  if (props) {
    carried = {};
    if (props.payloadFormatIndicator !== undefined)
      carried.payloadFormatIndicator = props.payloadFormatIndicator;
    if (props.contentType !== undefined) carried.contentType = props.contentType;
    if (props.responseTopic !== undefined) carried.responseTopic = props.responseTopic;
    if (props.correlationData !== undefined) carried.correlationData = Buffer.from(props.correlationData);
    if (props.userProperties !== undefined) carried.userProperties = props.userProperties;
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

/**
 * A will waiting out its delay (MQTT 5 section 3.1.3.2): published when the delay passes or the
 * session ends, whichever is first; dropped if the client reconnects to the session in time.
 */
export class PendingWill {
  private readonly timer: LongTimer;
  private done = false;

  constructor(
    delaySeconds: number,
    private readonly publish: () => void,
  ) {
    this.timer = new LongTimer(delaySeconds * 1000, () => this.fire());
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
