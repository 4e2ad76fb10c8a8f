import type { Counter, Gauge, Metrics } from '@robustmq/core';

/**
 * The plugin's metrics. Message and byte counts are plain numbers on the hot path, added to the
 * registry once a second (and on stop), so a transfer costs no label lookups.
 */
export class AmqpMetrics {
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  private readonly connections: Gauge;
  private readonly queueDepth: Gauge;
  private readonly queueMemory: Gauge;
  private readonly temporaryQueues: Gauge;
  private readonly temporaryDepth: Gauge;
  private readonly temporaryMemory: Gauge;
  private readonly unsettled: Gauge;
  private readonly messagesInTotal: Counter;
  private readonly messagesOutTotal: Counter;
  private readonly bytesInTotal: Counter;
  private readonly bytesOutTotal: Counter;
  private readonly badInputTotal: Counter;
  private readonly refusedTotal: Counter;
  private readonly droppedTotal: Counter;

  constructor(metrics: Metrics) {
    this.connections = metrics.gauge({
      name: 'robustmq_amqp_connections',
      help: 'AMQP connections open, by listener',
      labelNames: ['listener'],
    });
    this.queueDepth = metrics.gauge({
      name: 'robustmq_amqp_queue_depth',
      help: 'Messages not yet settled on an AMQP queue',
      labelNames: ['queue'],
    });
    this.queueMemory = metrics.gauge({
      name: 'robustmq_amqp_queue_memory_bytes',
      help: 'Bytes of messages an AMQP queue holds in memory (queue_memory_bytes bounds them)',
      labelNames: ['queue'],
    });
    // Temporary queues come and go with request/reply links under names made up for each: one
    // series per name would pile up in the registry (and in Prometheus) for ever. They are counted together.
    this.temporaryQueues = metrics.gauge({
      name: 'robustmq_amqp_temporary_queues',
      help: 'AMQP temporary (dynamic) queues open',
    });
    this.temporaryDepth = metrics.gauge({
      name: 'robustmq_amqp_temporary_queue_depth',
      help: 'Messages not yet settled on all AMQP temporary queues together',
    });
    this.temporaryMemory = metrics.gauge({
      name: 'robustmq_amqp_temporary_queue_memory_bytes',
      help: 'Bytes of messages all AMQP temporary queues together hold in memory',
    });
    this.unsettled = metrics.gauge({
      name: 'robustmq_amqp_unsettled_deliveries',
      help: 'Deliveries sent to AMQP consumers and not yet settled',
    });
    this.messagesInTotal = metrics.counter({
      name: 'robustmq_amqp_messages_in_total',
      help: 'Messages accepted from AMQP producers',
    });
    this.messagesOutTotal = metrics.counter({
      name: 'robustmq_amqp_messages_out_total',
      help: 'Messages delivered to AMQP consumers',
    });
    this.bytesInTotal = metrics.counter({
      name: 'robustmq_amqp_bytes_in_total',
      help: 'Message bytes received from AMQP producers',
    });
    this.bytesOutTotal = metrics.counter({
      name: 'robustmq_amqp_bytes_out_total',
      help: 'Message bytes sent to AMQP consumers',
    });
    this.badInputTotal = metrics.counter({
      name: 'robustmq_amqp_bad_input_total',
      help: 'Malformed or refused AMQP input, by reason',
      labelNames: ['reason'],
    });
    this.refusedTotal = metrics.counter({
      name: 'robustmq_amqp_refused_total',
      help: 'Authentications and links refused, by reason',
      labelNames: ['reason'],
    });
    this.droppedTotal = metrics.counter({
      name: 'robustmq_amqp_messages_dropped_total',
      help: 'Messages settled without delivery, by reason (expired, rejected without a dead-letter address, corrupt in storage)',
      labelNames: ['reason'],
    });
  }

  connectionOpened(listener: string): void {
    this.connections.inc({ listener });
  }

  connectionClosed(listener: string): void {
    this.connections.dec({ listener });
  }

  badInput(reason: string): void {
    this.badInputTotal.inc({ reason });
  }

  refused(reason: string): void {
    this.refusedTotal.inc({ reason });
  }

  dropped(reason: string, count = 1): void {
    this.droppedTotal.inc({ reason }, count);
  }

  /**
   * Moves the counts gathered since the last flush into the registry; sets the gauges: one series
   * per shared queue, one sum over the temporary queues.
   */
  flush(
    queues: Iterable<{
      name: string;
      temporary: boolean;
      depth: number;
      unsettled: number;
      memoryBytes: number;
    }>,
  ): void {
    if (this.messagesIn) this.messagesInTotal.inc(undefined, this.messagesIn);
    if (this.messagesOut) this.messagesOutTotal.inc(undefined, this.messagesOut);
    if (this.bytesIn) this.bytesInTotal.inc(undefined, this.bytesIn);
    if (this.bytesOut) this.bytesOutTotal.inc(undefined, this.bytesOut);
    this.messagesIn = this.messagesOut = this.bytesIn = this.bytesOut = 0;
    let unsettled = 0;
    let temporaries = 0;
    let temporaryDepth = 0;
    let temporaryMemory = 0;
    for (const queue of queues) {
      unsettled += queue.unsettled;
      if (queue.temporary) {
        temporaries++;
        temporaryDepth += queue.depth;
        temporaryMemory += queue.memoryBytes;
        continue;
      }
      this.queueDepth.set({ queue: queue.name }, queue.depth);
      this.queueMemory.set({ queue: queue.name }, queue.memoryBytes);
    }
    this.unsettled.set(undefined, unsettled);
    this.temporaryQueues.set(undefined, temporaries);
    this.temporaryDepth.set(undefined, temporaryDepth);
    this.temporaryMemory.set(undefined, temporaryMemory);
  }
}
