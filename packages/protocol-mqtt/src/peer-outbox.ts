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
  /**
   * Set on a message routed for a broker that is gone (its id): the receiving broker gives it only
   * to the sessions it took over from that broker.
   */
  f?: number;
}

/** Bytes of messages sent to one broker and not yet answered, past which QoS 0 is dropped. */
export const MAX_BYTES_IN_FLIGHT = 8 * 1024 * 1024;
/** A batch is sent at once when it holds this many bytes. */
const BATCH_BYTES = 1024 * 1024;
/** Wait before sending again what another broker did not answer. */
const RETRY_MS = 200;

/** What one call to another broker carries: messages, numbered per sending broker (`c`) by `s`. */
export interface ForwardedBatch {
  b: ForwardedMessage[];
  /** The sending broker's run: its id and a boot id. */
  c: string;
  s: number;
}

/** A batch not yet answered by the other broker. */
interface Unanswered {
  body: ForwardedBatch;
  bytes: number;
  resolve: () => void;
  answered: boolean;
}

/**
 * The messages on their way to one other broker. Those routed in one turn of the event loop go
 * in one call, so a broker under load makes few calls; QoS 0 messages are dropped (counted as
 * `slow_peer`) while that broker is behind, as they are for a client that does not keep up, and a
 * QoS 1 or 2 publisher waits for its acknowledgement instead. What that broker does not answer is
 * sent again, in order, for as long as it counts as live; it tells repeats by their numbers.
 */
export class PeerOutbox {
  private batch: ForwardedMessage[] | null = null;
  private batchBytes = 0;
  private sent: Promise<void> = Promise.resolve();
  private bytesInFlight = 0;
  private failing = false;
  private seq = 0;
  /** Batches sent and not answered yet, oldest first. */
  private readonly unanswered: Unanswered[] = [];
  private recovering = false;
  /** The batches queued or sent and not answered yet, each settled once answered. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly peer: number,
    private readonly cluster: BrokerCluster,
    private readonly metrics: MqttMetrics,
    private readonly logger: Logger,
    /** This broker's run, which the other broker tells batches sent twice by. */
    private readonly channel: string,
    /** Whether the other broker still counts as live: batches are sent again until it is not. */
    private readonly isLive: () => boolean,
    /**
     * Takes the messages the other broker did not answer once it is gone, to the brokers that
     * take its sessions over; resolves once they hold them.
     */
    private readonly orphaned: (messages: ForwardedMessage[]) => Promise<void>,
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
      const sent = new Promise<void>((resolve) => setImmediate(() => this.flush(batch, resolve)));
      this.sent = sent;
      this.pending.add(sent);
      void sent.then(() => this.pending.delete(sent));
    }
    this.batch.push(message);
    this.batchBytes += bytes;
    this.bytesInFlight += bytes;
    const sent = this.sent;
    if (this.batchBytes >= BATCH_BYTES) this.batch = null;
    return sent;
  }

  /** Resolves once the other broker has answered everything queued for it so far. */
  answeredSoFar(): Promise<void> {
    return Promise.all(this.pending).then(() => undefined);
  }

  private flush(batch: ForwardedMessage[], resolve: () => void): void {
    if (this.batch === batch) this.batch = null;
    let bytes = 0;
    for (const message of batch) bytes += sizeOf(message);
    const entry: Unanswered = {
      body: { b: batch, c: this.channel, s: this.seq++ },
      bytes,
      resolve,
      answered: false,
    };
    this.unanswered.push(entry);
    // While earlier batches are sent again, this one waits its turn, so that order holds.
    if (!this.recovering) void this.send(entry);
  }

  private send(entry: Unanswered): Promise<boolean> {
    return this.cluster.call(this.peer, 'mqtt.publish', entry.body).then(
      () => {
        this.answered(entry);
        return true;
      },
      (error: unknown) => {
        if (!this.failing) {
          this.failing = true;
          this.logger.warn(
            { err: error, broker: this.peer, messages: entry.body.b.length },
            'messages not forwarded to another broker yet; sending them again while it is live',
          );
        }
        if (!this.recovering) {
          this.recovering = true;
          setTimeout(() => void this.recover(), RETRY_MS);
        }
        return false;
      },
    );
  }

  private answered(entry: Unanswered): void {
    if (entry.answered) return;
    entry.answered = true;
    const at = this.unanswered.indexOf(entry);
    if (at >= 0) this.unanswered.splice(at, 1);
    this.bytesInFlight -= entry.bytes;
    entry.resolve();
  }

  /**
   * Sends what was not answered again, oldest first and one at a time, until the other broker
   * answers (it tells repeats by their number) or no longer counts as live: then what is left goes
   * to the sessions the live brokers take over from it.
   */
  private async recover(): Promise<void> {
    while (this.unanswered.length > 0) {
      if (!this.isLive()) {
        const lost = this.unanswered.splice(0);
        const messages = lost.flatMap((entry) => entry.body.b);
        this.logger.warn(
          { broker: this.peer, messages: messages.length },
          'messages for a broker that is gone go to the brokers taking its sessions over',
        );
        try {
          await this.orphaned(messages);
        } catch (error) {
          this.metrics.dropped('peer_unreachable', messages.length);
          this.logger.error(
            { err: error, broker: this.peer, messages: messages.length },
            'messages for a broker that is gone did not reach the sessions taken over from it',
          );
        }
        for (const entry of lost) this.answered(entry);
        break;
      }
      if (!(await this.send(this.unanswered[0]!))) {
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
    this.recovering = false;
    if (this.failing) {
      this.failing = false;
      this.logger.info({ broker: this.peer }, 'messages reach another broker again');
    }
  }
}

/**
 * Whether broker `peer` may still be live as `cluster` sees it. A broker cut off from the meta
 * service sees no broker live, itself included: it cannot tell that one gone, so what is queued
 * for it waits rather than going to the brokers taking its sessions over, of which there are none.
 */
export function mayBeLive(cluster: BrokerCluster, peer: number, announcing: string): boolean {
  return cluster.brokers().length === 0 || cluster.peers(announcing).includes(peer);
}

/** About what a message costs in flight: its payload and topic, and a little for the rest. */
function sizeOf(message: ForwardedMessage): number {
  return message.p.byteLength + message.m.topic.length + 64;
}
