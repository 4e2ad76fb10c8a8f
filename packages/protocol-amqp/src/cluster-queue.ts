import { relayedMessage } from './message-format.js';
import type { ConsumedQueue, Entry, MessageQueue, Outcome, QueueConsumer } from './message-queue.js';
import type { QueuesAcrossBrokers } from './queues-across-brokers.js';
import type { RelayedDelivery } from './remote-consumer.js';

/** A message relayed by the queue's owner, marked with the registration it came through. */
interface RelayedEntry extends Entry {
  relay: string;
}

/** The most deliveries a link asks its queue's owner for at once. */
const MAX_ROOM = 256;
/** Wait before trying again to reach a queue's owner. */
const RETRY_MS = 500;

/**
 * A queue as one consumer's link sees it in a cluster: the queue itself when this broker owns it,
 * else the owner's queue relayed. Relayed, the link's room goes to the owner as it changes, the
 * messages come back in batches, and its outcomes go to the owner by offset. When the owner
 * changes, the link follows; what it held unsettled is given again by the new owner (at least once).
 */
export class ClusterQueue implements ConsumedQueue {
  private consumer: QueueConsumer | null = null;
  private local: MessageQueue | null = null;
  /** The broker the link's messages come from, and its key there, while relayed. */
  private owner: number | null = null;
  private key: string | null = null;
  private connecting = false;
  private closed = false;
  private received = 0;
  private seq = 0;
  /** The room last reported, and how many deliveries had come when it was. */
  private reportedRoom = 0;
  private reportedReceived = 0;
  private reporting = false;
  private readonly ready: RelayedEntry[] = [];
  private outcomes: Array<[number, Outcome]> | null = null;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    readonly name: string,
    private readonly across: QueuesAcrossBrokers,
  ) {}

  addConsumer(consumer: QueueConsumer): void {
    this.consumer = consumer;
    this.connect();
  }

  removeConsumer(consumer: QueueConsumer): void {
    if (consumer !== this.consumer || this.closed) return;
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.disconnect();
    this.across.forget(this);
  }

  settle(entry: Entry, outcome: Outcome, consumer: QueueConsumer): void {
    if (this.local) {
      this.local.settle(entry, outcome, consumer);
      return;
    }
    // From before the queue moved: its new owner gives the message again.
    if (this.key === null || (entry as Partial<RelayedEntry>).relay !== this.key) return;
    this.outcome(entry.offset, outcome);
  }

  schedulePump(): void {
    if (this.local) this.local.schedulePump();
    else this.pump();
  }

  /** Relayed, only what has reached this broker counts: the owner's queue is not asked. */
  holdsFor(consumer: QueueConsumer): boolean {
    if (this.local) return this.local.holdsFor(consumer);
    return consumer === this.consumer && this.ready.length > 0;
  }

  /** Relayed, the owner's pauses show as messages not reaching this broker yet. */
  paused(): boolean {
    return this.local?.paused() ?? false;
  }

  /** Messages the owner sent for registration `key`. */
  take(key: string, deliveries: readonly RelayedDelivery[]): void {
    if (key !== this.key) return;
    this.received += deliveries.length;
    for (const [offset, payload] of deliveries) {
      const wire = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      this.ready.push({
        offset,
        message: relayedMessage(this.name, wire),
        priority: 0,
        expiresAt: Infinity,
        deliveryCount: 0,
        redelivered: false,
        size: wire.length,
        holder: null,
        slot: -1,
        relay: key,
      });
    }
    this.pump();
  }

  /** Follows the queue to its owner in this broker's view, when that changed. */
  recheck(): void {
    if (this.closed || this.connecting) return;
    const owner = this.across.ownerOf(this.name);
    if (owner !== null && owner === this.owner) return;
    this.disconnect();
    this.connect();
  }

  /** The queue closed where the link took it from: take it from its owner now. */
  reattach(): void {
    if (this.closed) return;
    this.disconnect();
    this.connect();
  }

  /** The owner let the queue go: reach it again once the view has settled. */
  moved(): void {
    if (this.closed) return;
    this.disconnect();
    this.later();
  }

  /** Tells the owner the link's room again, which also finds out whether the owner still has it. */
  refresh(): void {
    if (this.key === null) return;
    this.report(true);
  }

  private connect(): void {
    // Already taking from an owner: a retry that was due before is moot.
    if (this.closed || this.connecting || this.consumer === null || this.local || this.key !== null) return;
    const owner = this.across.ownerOf(this.name);
    if (owner === null) {
      this.later();
      return;
    }
    this.connecting = true;
    this.owner = owner;
    if (owner === this.across.nodeId) {
      this.across.broker.queue(this.name).then(
        (queue) => {
          this.connecting = false;
          if (this.closed) return;
          // Moved meanwhile: the retry may have come while this was under way.
          if (this.owner !== owner) {
            this.later();
            return;
          }
          this.local = queue;
          queue.addConsumer(this.consumer!);
          this.recheck();
        },
        (error: unknown) => {
          this.connecting = false;
          this.failed(owner, error);
        },
      );
      return;
    }
    const key = this.across.register(this);
    this.key = key;
    this.received = 0;
    this.seq = 0;
    this.reportedRoom = 0;
    this.reportedReceived = 0;
    this.across.call<{ ok: boolean }>(owner, 'amqp.consume', { q: this.name, k: key }).then(
      (answer) => {
        this.connecting = false;
        if (this.key !== key) {
          this.later();
          return;
        }
        if (!answer.ok) {
          this.disconnect();
          this.later();
          return;
        }
        this.report(true);
        this.recheck();
      },
      (error: unknown) => {
        this.connecting = false;
        if (this.key === key) this.failed(owner, error);
      },
    );
  }

  private failed(owner: number, error: unknown): void {
    this.across.failed(this.name, owner, error);
    this.disconnect();
    this.later();
  }

  private later(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect();
    }, RETRY_MS);
    this.retry.unref();
  }

  private disconnect(): void {
    if (this.local) {
      this.local.removeConsumer(this.consumer!);
      this.local = null;
    }
    if (this.key !== null) {
      const key = this.key;
      const owner = this.owner!;
      this.sendOutcomes();
      this.across.unregister(key);
      this.key = null;
      this.across.call(owner, 'amqp.cancel', { k: key }).catch(() => {});
    }
    this.owner = null;
    this.ready.length = 0;
  }

  /** Hands the link what it has room for, then tells the owner the room left. */
  private pump(): void {
    const consumer = this.consumer;
    if (this.key === null || consumer === null) return;
    while (this.ready.length > 0 && consumer.capacity() > 0) {
      const entry = this.ready.shift()!;
      if (consumer.deliver(entry, this)) this.outcome(entry.offset, { type: 'accepted' });
    }
    this.report();
  }

  /**
   * Tells the owner the link's room when it is more than the owner counts on (what was last
   * reported, less what has come since); `always` also when it is not. One report is in flight at
   * a time; the next carries whatever the room is by then.
   */
  private report(always = false): void {
    const key = this.key;
    if (key === null || this.reporting || this.connecting || this.closed) return;
    const room = Math.max(0, Math.min(MAX_ROOM, this.consumer!.capacity() - this.ready.length));
    if (!always && room <= this.reportedRoom - (this.received - this.reportedReceived)) return;
    this.reportedRoom = room;
    this.reportedReceived = this.received;
    this.reporting = true;
    this.across
      .call<{ unknown?: boolean }>(this.owner!, 'amqp.credit', {
        k: key,
        s: ++this.seq,
        c: room,
        r: this.received,
      })
      .then(
        (answer) => {
          this.reporting = false;
          if (this.key !== key) return;
          if (answer.unknown) this.moved();
          else this.report();
        },
        (error: unknown) => {
          this.reporting = false;
          if (this.key === key) this.failed(this.owner!, error);
        },
      );
  }

  private outcome(offset: number, outcome: Outcome): void {
    if (this.outcomes === null) {
      this.outcomes = [];
      setImmediate(() => this.sendOutcomes());
    }
    this.outcomes.push([offset, outcome]);
  }

  private sendOutcomes(): void {
    const outcomes = this.outcomes;
    this.outcomes = null;
    if (outcomes === null || outcomes.length === 0 || this.key === null) return;
    // Lost with the owner, the messages are given again by the next one.
    this.across.call(this.owner!, 'amqp.settle', { k: this.key, s: outcomes }).catch(() => {});
  }
}
