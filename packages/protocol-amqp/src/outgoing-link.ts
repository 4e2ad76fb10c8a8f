import { toTransferPayload } from './message-format.js';
import { addDelivery, type RheaOutgoingQueue } from './outgoing-delivery.js';
import type { ConsumedQueue, Entry, Outcome, QueueConsumer } from './message-queue.js';
import type { RheaSender } from './rhea-shapes.js';

/**
 * A delivery with its queue entry, kept on the delivery itself (the broker's OutgoingDelivery, or
 * rhea's own for a message over a frame) rather than in a map that grows and shrinks with every
 * burst of deliveries; null once settled.
 */
interface SentDelivery {
  readonly remote_settled: boolean;
  update(settled: boolean): void;
  queueEntry?: Entry | null;
}

/**
 * A link on which the broker sends (the peer's receiver): a consumer of one queue. It takes
 * messages only while the peer has given credit and the socket has room, and turns the peer's
 * dispositions into queue outcomes.
 */
export class OutgoingLink implements QueueConsumer {
  /** Deliveries sent and not yet settled. */
  private unsettledCount = 0;
  /**
   * The next delivery tag, a 32-bit counter kept as a number until its frame is written (rhea's own
   * tags are decimal strings, dearer to make): it repeats only after 2^32 deliveries, far more than
   * a link ever has unsettled.
   */
  private tag = 1;
  /** Deliveries handed to rhea in this turn; rhea takes them off the credit on its next tick. */
  private unflushed = 0;
  private flushScheduled = false;
  private queue: ConsumedQueue | null = null;
  private closed = false;

  constructor(
    readonly id: string,
    readonly address: string,
    private readonly sender: RheaSender,
    private readonly socketRoom: () => boolean,
    private readonly counted: (bytes: number) => void,
  ) {}

  /** Whether deliveries go pre-settled (the peer asked for snd-settle-mode settled). */
  get presettled(): boolean {
    return this.sender.local.attach.snd_settle_mode === 1;
  }

  attach(queue: ConsumedQueue): void {
    if (this.closed) return;
    this.queue = queue;
    queue.addConsumer(this);
  }

  capacity(): number {
    if (this.closed || !this.sender.is_open() || !this.socketRoom()) return 0;
    return Math.min(this.sender.credit - this.unflushed, this.sender.session.outgoing.available());
  }

  deliver(entry: Entry): boolean {
    const payload = toTransferPayload(entry.message, entry.deliveryCount);
    // A number, written as four bytes when the frame is (rhea takes 0 to mean no tag: it is skipped).
    const tag = this.tag;
    this.tag = (this.tag + 1) >>> 0 || 1;
    const outgoing = this.sender.session.outgoing as unknown as RheaOutgoingQueue;
    const delivery: SentDelivery =
      addDelivery(this.sender, outgoing, payload, tag) ?? this.sender.send(payload, tag, 0);
    this.counted(payload.length);
    this.unflushed++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.unflushed = 0;
        this.queue?.schedulePump();
      });
    }
    if (this.presettled) return true;
    delivery.queueEntry = entry;
    this.unsettledCount++;
    return false;
  }

  /** The peer gave credit or the socket drained. */
  wake(): void {
    this.queue?.schedulePump();
  }

  /** The peer asked to drain: send what is ready, then give back the rest of the credit. */
  drain(flush: () => void): void {
    setImmediate(() => {
      if (this.closed || !this.sender.is_open()) return;
      if (this.sender.credit - this.unflushed > 0) {
        this.sender.set_drained(true);
        flush();
      }
    });
  }

  outcome(delivery: SentDelivery, outcome: Outcome): void {
    const entry = delivery.queueEntry;
    if (!entry || this.closed) return;
    delivery.queueEntry = null;
    this.unsettledCount--;
    if (!delivery.remote_settled) delivery.update(true);
    this.queue?.settle(entry, outcome, this);
  }

  /** The peer settled without an outcome: taken as accepted. */
  settled(delivery: SentDelivery): void {
    this.outcome(delivery, { type: 'accepted' });
  }

  get credit(): number {
    return this.sender.credit;
  }

  get unsettled(): number {
    return this.unsettledCount;
  }

  /** The link or its connection ended: unsettled messages go back to the queue for others. */
  close(): ConsumedQueue | null {
    if (this.closed) return null;
    this.closed = true;
    this.unsettledCount = 0;
    this.queue?.removeConsumer(this);
    return this.queue;
  }
}
