import type { Counter, Gauge, Metrics } from '@robustmq/core';

/** Why a message was not delivered to a subscriber. */
export type DropReason =
  /** QoS 0 to a client whose socket already holds `max_outgoing_bytes`. */
  | 'slow_client'
  /** QoS 1/2 to a session whose queue holds `max_queued_messages`. */
  | 'queue_full'
  /** Its message expiry interval passed before it could be sent. */
  | 'expired'
  /** Bigger than the client's Maximum Packet Size. */
  | 'too_large';

const DROP_REASONS: readonly DropReason[] = ['slow_client', 'queue_full', 'expired', 'too_large'];

/**
 * The plugin's metrics. Per-message counts are plain numbers on the hot path, added to the
 * registry once a second (and on stop), so a publish costs no label lookups.
 */
export class MqttMetrics {
  messagesReceived = 0;
  messagesSent = 0;
  bytesReceived = 0;
  bytesSent = 0;
  /** Counts since start, up to the last flush (for `$SYS/`). */
  private readonly flushed = { messagesReceived: 0, messagesSent: 0, bytesReceived: 0, bytesSent: 0 };
  private readonly drops = new Map<DropReason, number>(DROP_REASONS.map((r) => [r, 0]));

  private readonly connections: Gauge;
  private readonly sessions: Gauge;
  private readonly subscriptions: Gauge;
  private readonly retained: Gauge;
  private readonly messagesReceivedTotal: Counter;
  private readonly messagesSentTotal: Counter;
  private readonly bytesReceivedTotal: Counter;
  private readonly bytesSentTotal: Counter;
  private readonly droppedTotal: Counter;
  private readonly badInputTotal: Counter;
  private readonly refusedTotal: Counter;

  constructor(metrics: Metrics) {
    this.connections = metrics.gauge({
      name: 'robustmq_mqtt_connections',
      help: 'MQTT client connections open',
    });
    this.sessions = metrics.gauge({ name: 'robustmq_mqtt_sessions', help: 'MQTT sessions held' });
    this.subscriptions = metrics.gauge({
      name: 'robustmq_mqtt_subscriptions',
      help: 'MQTT subscriptions held',
    });
    this.retained = metrics.gauge({
      name: 'robustmq_mqtt_retained_messages',
      help: 'MQTT retained messages held',
    });
    this.messagesReceivedTotal = metrics.counter({
      name: 'robustmq_mqtt_messages_received_total',
      help: 'PUBLISH packets accepted from MQTT clients',
    });
    this.messagesSentTotal = metrics.counter({
      name: 'robustmq_mqtt_messages_sent_total',
      help: 'PUBLISH packets sent to MQTT clients',
    });
    this.bytesReceivedTotal = metrics.counter({
      name: 'robustmq_mqtt_bytes_received_total',
      help: 'Bytes received from MQTT clients',
    });
    this.bytesSentTotal = metrics.counter({
      name: 'robustmq_mqtt_bytes_sent_total',
      help: 'Bytes written to MQTT clients',
    });
    this.droppedTotal = metrics.counter({
      name: 'robustmq_mqtt_messages_dropped_total',
      help: 'Messages not delivered to a subscriber, by reason',
      labelNames: ['reason'],
    });
    this.badInputTotal = metrics.counter({
      name: 'robustmq_mqtt_bad_input_total',
      help: 'Connections closed for malformed packets or protocol violations, by reason',
      labelNames: ['reason'],
    });
    this.refusedTotal = metrics.counter({
      name: 'robustmq_mqtt_connections_refused_total',
      help: 'CONNECT packets refused, by reason',
      labelNames: ['reason'],
    });
  }

  dropped(reason: DropReason, count = 1): void {
    this.drops.set(reason, this.drops.get(reason)! + count);
  }

  badInput(reason: string): void {
    this.badInputTotal.inc({ reason });
  }

  refused(reason: string): void {
    this.refusedTotal.inc({ reason });
  }

  connectionOpened(): void {
    this.connections.inc();
  }

  connectionClosed(): void {
    this.connections.dec();
  }

  /** Messages and bytes received and sent since start. */
  totals(): { messagesReceived: number; messagesSent: number; bytesReceived: number; bytesSent: number } {
    return {
      messagesReceived: this.flushed.messagesReceived + this.messagesReceived,
      messagesSent: this.flushed.messagesSent + this.messagesSent,
      bytesReceived: this.flushed.bytesReceived + this.bytesReceived,
      bytesSent: this.flushed.bytesSent + this.bytesSent,
    };
  }

  /** Moves the counts gathered since the last flush into the registry; sets the gauges. */
  flush(state: { sessions: number; subscriptions: number; retained: number }): void {
    if (this.messagesReceived) this.messagesReceivedTotal.inc(undefined, this.messagesReceived);
    if (this.messagesSent) this.messagesSentTotal.inc(undefined, this.messagesSent);
    if (this.bytesReceived) this.bytesReceivedTotal.inc(undefined, this.bytesReceived);
    if (this.bytesSent) this.bytesSentTotal.inc(undefined, this.bytesSent);
    this.flushed.messagesReceived += this.messagesReceived;
    this.flushed.messagesSent += this.messagesSent;
    this.flushed.bytesReceived += this.bytesReceived;
    this.flushed.bytesSent += this.bytesSent;
    this.messagesReceived = this.messagesSent = this.bytesReceived = this.bytesSent = 0;
    for (const [reason, count] of this.drops) {
      if (count) this.droppedTotal.inc({ reason }, count);
      this.drops.set(reason, 0);
    }
    this.sessions.set(undefined, state.sessions);
    this.subscriptions.set(undefined, state.subscriptions);
    this.retained.set(undefined, state.retained);
  }
}
