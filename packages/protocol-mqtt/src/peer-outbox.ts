import type { BrokerCluster, Logger } from '@robustmq/core';
import type { MqttMetrics } from './metrics.js';
import type { StoredMessage } from './stored-message.js';

/** A message one broker sends the others: the publication, its payload apart as raw bytes. */
export interface ForwardedMessage {
  m: StoredMessage;
  p: Uint8Array;
  /** The protocol it entered the cluster through (`mqtt`, or `foreign` for the others). */
  o: string;
  /** The shared groups (`{group}/{filter}`) the receiving broker is to serve. */
  g?: string[];
}

/** Bytes of messages sent to one broker and not yet answered, past which QoS 0 is dropped. */
export const MAX_BYTES_IN_FLIGHT = 8 * 1024 * 1024;
/** A batch is sent at once when it holds this many bytes. */
const BATCH_BYTES = 1024 * 1024;

/**
 * The messages on their way to one other broker. Those routed in one turn of the event loop go
 * in one call, so a broker under load makes few calls; QoS 0 messages are dropped (counted as
 * `slow_peer`) while that broker is behind, as they are for a client that does not keep up, and a
 * QoS 1 or 2 publisher waits for its acknowledgement instead.
 */
export class PeerOutbox {
  private batch: ForwardedMessage[] | null = null;
  private batchBytes = 0;
  private sent: Promise<void> = Promise.resolve();
  private bytesInFlight = 0;
  private failing = false;

  constructor(
    private readonly peer: number,
    private readonly cluster: BrokerCluster,
    private readonly metrics: MqttMetrics,
    private readonly logger: Logger,
  ) {}

  /** Queues a message; resolves once the other broker has it (or could not be reached). */
  add(message: ForwardedMessage, qos: number): Promise<void> | null {
    const bytes = sizeOf(message);
    if (qos === 0 && this.bytesInFlight >= MAX_BYTES_IN_FLIGHT) {
      this.metrics.dropped('slow_peer');
      return null;
    }
    if (this.batch === null) {
      const batch: ForwardedMessage[] = [];
      this.batch = batch;
      this.batchBytes = 0;
      this.sent = new Promise<void>((resolve) => setImmediate(() => this.flush(batch, resolve)));
    }
    this.batch.push(message);
    this.batchBytes += bytes;
    this.bytesInFlight += bytes;
    const sent = this.sent;
    if (this.batchBytes >= BATCH_BYTES) this.batch = null;
    return sent;
  }

  private flush(batch: ForwardedMessage[], resolve: () => void): void {
    if (this.batch === batch) this.batch = null;
    let bytes = 0;
    for (const message of batch) bytes += sizeOf(message);
    this.cluster
      .call(this.peer, 'mqtt.publish', { b: batch })
      .then(
        () => {
          if (!this.failing) return;
          this.failing = false;
          this.logger.info({ broker: this.peer }, 'messages reach another broker again');
        },
        (error: unknown) => {
          this.metrics.dropped('peer_unreachable', batch.length);
          if (this.failing) return;
          this.failing = true;
          this.logger.warn(
            { err: error, broker: this.peer, messages: batch.length },
            'messages not forwarded to another broker (further failures are counted, not logged)',
          );
        },
      )
      .finally(() => {
        this.bytesInFlight -= bytes;
        resolve();
      });
  }
}

/** About what a message costs in flight: its payload and topic, and a little for the rest. */
function sizeOf(message: ForwardedMessage): number {
  return message.p.byteLength + message.m.topic.length + 64;
}
