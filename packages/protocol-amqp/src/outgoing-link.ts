import { toTransferPayload } from './message-format.js';
import { countSenderCredit } from './link-credit.js';
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
  /** The peer's state, as rhea reads it: an outcome it can write back described. */
  readonly remote_state?: object;
  update(settled: boolean, state?: unknown): void;
  queueEntry?: Entry | null;
}

const RELEASED: Outcome = Object.freeze({ type: 'released' });

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
  /** A drain the peer asked for before the link had its queue: answered once it has. */
  private drainOnAttach: (() => void) | null = null;
  /** A drain the peer asked for, answered once the messages the queue holds for the link are out. */
  private draining: (() => void) | null = null;

  constructor(
    readonly id: string,
    readonly address: string,
    private readonly sender: RheaSender,
    private readonly socketRoom: () => boolean,
    private readonly counted: (bytes: number) => void,
    /** Ends the link with an error condition: the peer cannot take a message it would be sent. */
    private readonly refuse: (condition: string, description: string) => void,
  ) {
    countSenderCredit(sender);
  }

  /** The largest message the peer takes on this link (its attach's max-message-size); 0 for any. */
  private get maxMessageSize(): number {
    const max = this.sender.remote.attach?.max_message_size;
    return typeof max === 'number' && max > 0 ? max : 0;
  }

  /** Whether deliveries go pre-settled (the peer asked for snd-settle-mode settled). */
  get presettled(): boolean {
    return this.sender.local.attach.snd_settle_mode === 1;
  }

  attach(queue: ConsumedQueue): void {
    if (this.closed) return;
    this.queue = queue;
    queue.addConsumer(this);
    const flush = this.drainOnAttach;
    if (flush) {
      this.drainOnAttach = null;
      this.drain(flush);
    }
  }

  capacity(): number {
    if (this.closed || !this.sender.is_open() || !this.socketRoom()) return 0;
    return Math.min(this.sender.credit - this.unflushed, this.sender.session.outgoing.available());
  }

  deliver(entry: Entry): boolean {
    const payload = toTransferPayload(entry.message, entry);
    const max = this.maxMessageSize;
    if (max > 0 && payload.length > max) {
      // AMQP 1.0 section 2.7.3: a link error. The message was not delivered, so it goes back as it
      // was, for a consumer that takes it.
      this.queue?.settle(entry, RELEASED, this);
      this.refuse(
        'amqp:link:message-size-exceeded',
        `message of ${payload.length} bytes exceeds the link's max-message-size ${max}`,
      );
      return false;
    }
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

  /** The peer gave credit, or the socket or the session has room again. */
  wake(): void {
    this.queue?.schedulePump();
    if (this.draining) setImmediate(() => this.finishDrain());
  }

  /**
   * The peer asked to drain: send what the queue holds, then give back the rest of the credit
   * (AMQP 1.0 section 2.6.7). Messages waiting for room on the socket or in the session are sent
   * first, as room appears.
   */
  drain(flush: () => void): void {
    // Until the queue is known there is no telling whether messages wait: the credit is not given back yet.
    if (!this.queue) {
      this.drainOnAttach = flush;
      return;
    }
    this.draining = flush;
    setImmediate(() => this.finishDrain());
  }

  private finishDrain(): void {
    const flush = this.draining;
    if (!flush || this.closed || !this.sender.is_open()) return;
    // Deliveries handed to rhea in this turn go out first; the credit left after them is given back.
    if (this.unflushed > 0) {
      setImmediate(() => this.finishDrain());
      return;
    }
    // Only room is missing, or the queue waits to save its state first: `wake` tries again then.
    const queue = this.queue;
    if (this.sender.credit > 0 && (this.capacity() <= 0 || queue?.paused()) && queue?.holdsFor(this)) return;
    this.draining = null;
    // The flow that ends the drain: the credit left given back, or none left when the messages used
    // it all (section 2.6.7: after sending what it has, the sender sends its flow state).
    this.sender.set_drained(true);
    flush();
  }

  outcome(delivery: SentDelivery, outcome: Outcome): void {
    const entry = delivery.queueEntry;
    if (!entry || this.closed) return;
    delivery.queueEntry = null;
    this.unsettledCount--;
    // Settling first for a consumer that settles second: the disposition names the outcome, as
    // rhea's receivers expect of a disposition with a settlement.
    if (!delivery.remote_settled) delivery.update(true, describedState(delivery));
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

/** The peer's state of a delivery as rhea writes it into a disposition (its outcome, described). */
function describedState(delivery: SentDelivery): unknown {
  return (delivery.remote_state as { described?(): unknown } | undefined)?.described?.();
}
