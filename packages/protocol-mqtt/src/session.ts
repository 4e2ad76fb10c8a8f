import { encodeAck } from './codec/encode.js';
import type { Connection } from './connection.js';
import { InboundFlow } from './inbound-flow.js';
import type { MqttMetrics } from './metrics.js';
import { OutboundFlow } from './outbound-flow.js';
import type { Publication } from './publication.js';
import type { SubscriptionOptions } from './subscription-tree.js';
import { LongTimer } from './timers.js';
import type { PendingWill } from './wills.js';

/** A QoS 1 or 2 message on its way to one session. */
export interface Delivery {
  readonly publication: Publication;
  readonly qos: 1 | 2;
  /** The RETAIN flag to send. */
  readonly retain: boolean;
  readonly subscriptionIds: readonly number[] | null;
}

/** Session Expiry Interval meaning "never" (MQTT 5 section 3.1.2.11.2). */
export const NEVER_EXPIRES = 0xffff_ffff;

/**
 * The state the broker keeps for a client id across its connections: subscriptions, QoS 1/2
 * messages in flight and queued, QoS 2 identifiers awaiting release, expiry and a delayed will.
 * Held in memory; it outlives a connection for as long as its expiry interval says.
 */
export class Session {
  connection: Connection | null = null;
  readonly subscriptions = new Map<string, SubscriptionOptions>();
  readonly outbound: OutboundFlow<Delivery>;
  readonly inbound = new InboundFlow();
  /** Seconds the session outlives its connection; {@link NEVER_EXPIRES} for ever. */
  expiryInterval = 0;
  ended = false;
  private expiryTimer: LongTimer | null = null;
  private pendingWill: PendingWill | null = null;

  constructor(
    readonly clientId: string,
    private readonly metrics: MqttMetrics,
    private readonly maxInflight: number,
    maxQueued: number,
  ) {
    this.outbound = new OutboundFlow(maxInflight, maxQueued);
  }

  /** Sends or queues one message for this session at `qos` (already lowered to the subscription's). */
  deliver(
    publication: Publication,
    qos: number,
    retain: boolean,
    subscriptionIds: readonly number[] | null,
    now: number,
  ): void {
    const connection = this.connection;
    if (qos === 0) {
      if (connection !== null) connection.sendQos0(publication, retain, subscriptionIds, now);
      return;
    }
    const delivery: Delivery = { publication, qos: qos as 1 | 2, retain, subscriptionIds };
    if (
      connection !== null &&
      this.outbound.queuedCount === 0 &&
      this.outbound.canSend() &&
      !connection.congested()
    ) {
      this.transmit(connection, delivery, now);
      return;
    }
    publication.detach();
    if (!this.outbound.enqueue(delivery)) this.metrics.dropped('queue_full');
  }

  /** Sends queued messages while the window and the socket allow. */
  pump(now: number): void {
    const connection = this.connection;
    if (connection === null) return;
    while (this.outbound.queuedCount > 0 && this.outbound.canSend() && !connection.congested()) {
      const delivery = this.outbound.dequeue()!;
      if (delivery.publication.isExpired(now)) {
        this.metrics.dropped('expired');
        continue;
      }
      this.transmit(connection, delivery, now);
    }
  }

  /** Binds the session to a new connection: no expiry, no delayed will, the client's window. */
  attach(connection: Connection): void {
    this.expiryTimer?.cancel();
    this.expiryTimer = null;
    this.pendingWill?.cancel();
    this.pendingWill = null;
    this.connection = connection;
    this.outbound.window = Math.min(this.maxInflight, connection.clientReceiveMaximum);
  }

  /** After CONNACK: sends again what was in flight (PUBLISH with DUP, or PUBREL), then the queue. */
  resume(now: number): void {
    const connection = this.connection;
    if (connection === null) return;
    for (const entry of this.outbound.pending()) {
      if (entry.state === 'awaiting-pubcomp') connection.write(encodeAck('pubrel', entry.packetId));
      else connection.sendPublish(entry.message, entry.packetId, true, now);
    }
    this.pump(now);
  }

  /** Starts the expiry clock once the connection is gone. */
  startExpiry(onExpire: () => void): void {
    if (this.expiryInterval === NEVER_EXPIRES) return;
    this.expiryTimer = new LongTimer(this.expiryInterval * 1000, onExpire);
  }

  /** A will waiting for its delay; the session's end publishes it at once. */
  holdWill(will: PendingWill): void {
    this.pendingWill?.fire();
    this.pendingWill = will;
  }

  /** Ends the session: timers stop, a delayed will is published, state is dropped. */
  end(): void {
    this.ended = true;
    this.expiryTimer?.cancel();
    this.expiryTimer = null;
    const will = this.pendingWill;
    this.pendingWill = null;
    will?.fire();
    this.outbound.clear();
    this.inbound.clear();
    this.subscriptions.clear();
  }

  /** Drops the session without publishing its delayed will (the broker is stopping). */
  discard(): void {
    this.pendingWill?.cancel();
    this.pendingWill = null;
    this.end();
  }

  private transmit(connection: Connection, delivery: Delivery, now: number): void {
    const packetId = this.outbound.send(delivery, delivery.qos);
    if (!connection.sendPublish(delivery, packetId, false, now)) {
      this.outbound.discard(packetId);
      this.metrics.dropped('too_large');
    }
  }
}
