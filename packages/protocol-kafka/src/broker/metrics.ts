import type { Counter, Gauge, Metrics } from '@robustmq/core';

/** The Kafka plugin's metrics, labelled by listener (`tcp`, `tls`). */
export class KafkaMetrics {
  private readonly connections: Gauge;
  private readonly requests: Counter;
  private readonly bytesIn: Counter;
  private readonly bytesOut: Counter;
  private readonly badInput: Counter;
  private readonly recordsIn: Counter;
  private readonly recordsOut: Counter;
  private readonly readsAhead: Counter;

  constructor(metrics: Metrics) {
    this.connections = metrics.gauge({
      name: 'robustmq_kafka_connections',
      help: 'Kafka client connections open',
      labelNames: ['listener'],
    });
    this.requests = metrics.counter({
      name: 'robustmq_kafka_requests_total',
      help: 'Kafka requests handled, by listener and API',
      labelNames: ['listener', 'api'],
    });
    this.bytesIn = metrics.counter({
      name: 'robustmq_kafka_bytes_received_total',
      help: 'Bytes received from Kafka clients',
      labelNames: ['listener'],
    });
    this.bytesOut = metrics.counter({
      name: 'robustmq_kafka_bytes_sent_total',
      help: 'Bytes written to Kafka clients',
      labelNames: ['listener'],
    });
    this.recordsIn = metrics.counter({
      name: 'robustmq_kafka_records_received_total',
      help: 'Records stored from Kafka producers',
      labelNames: ['listener'],
    });
    this.recordsOut = metrics.counter({
      name: 'robustmq_kafka_records_sent_total',
      help: 'Records sent to Kafka consumers in fetched batches',
      labelNames: ['listener'],
    });
    this.readsAhead = metrics.counter({
      name: 'robustmq_kafka_fetch_reads_ahead_total',
      help: 'Storage reads Fetch made ahead of a consumer, by outcome: used by its next Fetch or discarded',
      labelNames: ['listener', 'outcome'],
    });
    this.badInput = metrics.counter({
      name: 'robustmq_kafka_bad_input_total',
      help: 'Malformed, oversized or refused Kafka requests, by listener and reason',
      labelNames: ['listener', 'reason'],
    });
  }

  connectionOpened(listener: string): void {
    this.connections.inc({ listener });
  }
  connectionClosed(listener: string): void {
    this.connections.dec({ listener });
  }
  request(listener: string, api: string): void {
    this.requests.inc({ listener, api });
  }
  received(listener: string, bytes: number): void {
    this.bytesIn.inc({ listener }, bytes);
  }
  sent(listener: string, bytes: number): void {
    this.bytesOut.inc({ listener }, bytes);
  }
  recordsReceived(listener: string, count: number): void {
    this.recordsIn.inc({ listener }, count);
  }
  recordsSent(listener: string, count: number): void {
    if (count > 0) this.recordsOut.inc({ listener }, count);
  }
  readAhead(listener: string, outcome: 'used' | 'discarded'): void {
    this.readsAhead.inc({ listener, outcome });
  }
  bad(listener: string, reason: string): void {
    this.badInput.inc({ listener, reason });
  }
}
