import type { Counter, Gauge, Histogram, MetricLabels, Metrics } from '@robustmq/core';

/** Why a message was not delivered to a subscriber. */
export type DropReason =
  /** QoS 0 to a client whose socket already holds `max_outgoing_bytes`. */
  | 'slow_client'
  /** QoS 1/2 to a session whose queue holds `max_queued_messages`. */
  | 'queue_full'
  /** Its message expiry interval passed before it could be sent. */
  | 'expired'
  /** Bigger than the client's Maximum Packet Size. */
  | 'too_large'
  /** For the subscribers of another broker of the cluster, which could not be reached. */
  | 'peer_unreachable'
  /** QoS 0 for another broker of the cluster that is behind by `MAX_BYTES_IN_FLIGHT`. */
  | 'slow_peer'
  /** A QoS 2 message routed again after a broker crash, which the session already had. */
  | 'duplicate';

const DROP_REASONS: readonly DropReason[] = [
  'slow_client',
  'queue_full',
  'expired',
  'too_large',
  'peer_unreachable',
  'slow_peer',
  'duplicate',
];

/** One delivery in this many has its publish-to-deliver latency observed. */
export const LATENCY_SAMPLE = 16;

/** Upper bounds of the latency histogram's buckets, in seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60];

/**
 * The traffic of one listener since the last flush, as plain numbers the connections of that
 * listener add to.
 */
export class ListenerCounts {
  messagesReceived = 0;
  messagesSent = 0;
  bytesReceived = 0;
  bytesSent = 0;
  private sample = 0;

  constructor(
    readonly labels: MetricLabels,
    private readonly latency: Histogram,
  ) {}

  /** A message was written to a subscriber: its time since publication is sampled. */
  delivered(now: number, publishedAt: number): void {
    this.messagesSent++;
    if (++this.sample === LATENCY_SAMPLE) {
      this.sample = 0;
      this.latency.observe(this.labels, Math.max(0, now - publishedAt) / 1000);
    }
  }
}

/**
 * The plugin's metrics. Per-message counts are plain numbers on the hot path (one set per
 * listener), added to the registry once a second (and on stop), so a publish costs no label
 * lookups. Traffic and connections are labelled `protocol="mqtt"` and `listener`.
 */
export class MqttMetrics {
  /** Messages the broker published itself (wills). */
  messagesReceived = 0;
  /** Counts since start, up to the last flush (for `$SYS/`). */
  private readonly flushed = { messagesReceived: 0, messagesSent: 0, bytesReceived: 0, bytesSent: 0 };
  private readonly drops = new Map<DropReason, number>(DROP_REASONS.map((r) => [r, 0]));
  private readonly listeners = new Map<string, ListenerCounts>();
  private readonly latency: Histogram;

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
    const byListener = ['protocol', 'listener'];
    this.connections = metrics.gauge({
      name: 'robustmq_mqtt_connections',
      help: 'MQTT client connections open, by listener',
      labelNames: byListener,
    });
    this.latency = metrics.histogram({
      name: 'robustmq_mqtt_delivery_latency_seconds',
      help: `Time from a message's publication to its PUBLISH to a subscriber, one delivery in ${LATENCY_SAMPLE}, by the subscriber's listener`,
      labelNames: byListener,
      buckets: LATENCY_BUCKETS,
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
      help: 'PUBLISH packets accepted from MQTT clients, by listener',
      labelNames: byListener,
    });
    this.messagesSentTotal = metrics.counter({
      name: 'robustmq_mqtt_messages_sent_total',
      help: 'PUBLISH packets sent to MQTT clients, by listener',
      labelNames: byListener,
    });
    this.bytesReceivedTotal = metrics.counter({
      name: 'robustmq_mqtt_bytes_received_total',
      help: 'Bytes received from MQTT clients, by listener',
      labelNames: byListener,
    });
    this.bytesSentTotal = metrics.counter({
      name: 'robustmq_mqtt_bytes_sent_total',
      help: 'Bytes written to MQTT clients, by listener',
      labelNames: byListener,
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

  /** The counts of the listener named `name` (one object per listener, kept). */
  listener(name: string): ListenerCounts {
    let counts = this.listeners.get(name);
    if (!counts) {
      counts = new ListenerCounts({ protocol: 'mqtt', listener: name }, this.latency);
      this.listeners.set(name, counts);
      // Every listener shows up, even before its first connection.
      this.connections.inc(counts.labels, 0);
    }
    return counts;
  }

  connectionOpened(counts: ListenerCounts): void {
    this.connections.inc(counts.labels);
  }

  connectionClosed(counts: ListenerCounts): void {
    this.connections.dec(counts.labels);
  }

  /** Messages and bytes received and sent since start. */
  totals(): { messagesReceived: number; messagesSent: number; bytesReceived: number; bytesSent: number } {
    const totals = { ...this.flushed };
    totals.messagesReceived += this.messagesReceived;
    for (const counts of this.listeners.values()) {
      totals.messagesReceived += counts.messagesReceived;
      totals.messagesSent += counts.messagesSent;
      totals.bytesReceived += counts.bytesReceived;
      totals.bytesSent += counts.bytesSent;
    }
    return totals;
  }

  /** Moves the counts gathered since the last flush into the registry; sets the gauges. */
  flush(state: { sessions: number; subscriptions: number; retained: number }): void {
    for (const counts of this.listeners.values()) {
      const { labels } = counts;
      if (counts.messagesReceived) this.messagesReceivedTotal.inc(labels, counts.messagesReceived);
      if (counts.messagesSent) this.messagesSentTotal.inc(labels, counts.messagesSent);
      if (counts.bytesReceived) this.bytesReceivedTotal.inc(labels, counts.bytesReceived);
      if (counts.bytesSent) this.bytesSentTotal.inc(labels, counts.bytesSent);
      this.flushed.messagesReceived += counts.messagesReceived;
      this.flushed.messagesSent += counts.messagesSent;
      this.flushed.bytesReceived += counts.bytesReceived;
      this.flushed.bytesSent += counts.bytesSent;
      counts.messagesReceived = counts.messagesSent = counts.bytesReceived = counts.bytesSent = 0;
    }
    this.flushed.messagesReceived += this.messagesReceived;
    this.messagesReceived = 0;
    for (const [reason, count] of this.drops) {
      if (count) this.droppedTotal.inc({ reason }, count);
      this.drops.set(reason, 0);
    }
    this.sessions.set(undefined, state.sessions);
    this.subscriptions.set(undefined, state.subscriptions);
    this.retained.set(undefined, state.retained);
  }
}
