import { toTransferPayload } from './message-format.js';
import type { Entry, MessageQueue, Outcome, QueueConsumer } from './message-queue.js';

/** A message on its way to a consumer on another broker: its offset and its transfer payload. */
export type RelayedDelivery = [offset: number, payload: Uint8Array];

/** Sends a batch of deliveries to the consumer's broker. */
export type SendDeliveries = (consumer: RemoteConsumer, deliveries: RelayedDelivery[]) => void;

/**
 * On the broker that owns a queue: a consumer whose link is on another broker. Deliveries made in
 * one turn of the event loop go there in one call; that broker reports how many more its link takes
 * and sends back the link's outcomes, by offset.
 */
export class RemoteConsumer implements QueueConsumer {
  /** Deliveries sent to it so far. */
  private sent = 0;
  /** What its last report said: `room` more after it had received `receivedThen`. */
  private room = 0;
  private receivedThen = 0;
  private lastReport = -1;
  private readonly held = new Map<number, Entry>();
  private batch: RelayedDelivery[] | null = null;
  private left = false;

  constructor(
    /** How both brokers know this consumer. */
    readonly key: string,
    /** The broker its link is on. */
    readonly node: number,
    readonly queue: MessageQueue,
    private readonly send: SendDeliveries,
  ) {}

  capacity(): number {
    if (this.left) return 0;
    return this.room - (this.sent - this.receivedThen);
  }

  deliver(entry: Entry): boolean {
    this.sent++;
    this.held.set(entry.offset, entry);
    if (this.batch === null) {
      const batch: RelayedDelivery[] = [];
      this.batch = batch;
      setImmediate(() => {
        this.batch = null;
        if (!this.left) this.send(this, batch);
      });
    }
    this.batch.push([entry.offset, toTransferPayload(entry.message, entry)]);
    return false;
  }

  /**
   * Report `seq` of the consumer's broker: the link takes `room` more once `received` deliveries
   * reached it. Reports counted this way stay right while deliveries are on their way.
   */
  report(seq: number, room: number, received: number): void {
    if (seq <= this.lastReport) return;
    this.lastReport = seq;
    this.room = room;
    this.receivedThen = received;
    this.queue.schedulePump();
  }

  settle(outcomes: ReadonlyArray<[number, Outcome]>): void {
    for (const [offset, outcome] of outcomes) {
      const entry = this.held.get(offset);
      if (!entry) continue;
      this.held.delete(offset);
      this.queue.settle(entry, outcome, this);
    }
  }

  /** Leaves the queue: what it holds unsettled goes to the other consumers. */
  leave(): void {
    if (this.left) return;
    this.left = true;
    this.held.clear();
    this.queue.removeConsumer(this);
  }
}
