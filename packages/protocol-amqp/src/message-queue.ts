import { ErrorCode, isRobustMQError, type Logger, type Message } from '@robustmq/core';
import { deliveryFacts } from './message-format.js';
import type { MessageLog } from './message-log.js';
import { ReadyList } from './ready-list.js';

/** One message of a queue on its way to consumers. */
export interface Entry {
  offset: number;
  message: Message;
  priority: number;
  expiresAt: number;
  /** Failed deliveries so far (AMQP header delivery-count). */
  deliveryCount: number;
  /**
   * Whether it may have gone to a consumer before: it came back, or the queue's saved state says so
   * (AMQP header first-acquirer goes out false).
   */
  redelivered: boolean;
  /** Bytes it holds in memory: payload and headers. */
  size: number;
  /** Consumers that answered `modified` with undeliverable-here. */
  refusedBy?: Set<QueueConsumer>;
  /** The consumer it is delivered to and not yet settled by, or null. */
  holder: QueueConsumer | null;
  /** Its place among the queue's unsettled entries; -1 when it is not unsettled. */
  slot: number;
}

/** What a consumer (an outgoing link) answers for a delivery. */
export type Outcome =
  | { type: 'accepted' }
  | { type: 'released' }
  | { type: 'rejected'; description?: string }
  | { type: 'modified'; deliveryFailed: boolean; undeliverableHere: boolean };

export interface QueueConsumer {
  /** How many more deliveries it takes now (link credit, socket room). */
  capacity(): number;
  /** Sends the entry; true when it went pre-settled (at-most-once), so it counts as accepted. */
  deliver(entry: Entry, queue: ConsumedQueue): boolean;
  /** The queue goes on delivering after it paused (see {@link ConsumedQueue.paused}). */
  wake?(): void;
}

/** What a consumer's link sees of the queue it takes messages from. */
export interface ConsumedQueue {
  addConsumer(consumer: QueueConsumer): void;
  /** The consumer is gone; what it holds unsettled goes to the others. */
  removeConsumer(consumer: QueueConsumer): void;
  /** Applies the consumer's outcome for its delivery of `entry`. */
  settle(entry: Entry, outcome: Outcome, consumer: QueueConsumer): void;
  /** The consumer has room again (credit, socket). */
  schedulePump(): void;
  /** Whether messages wait in memory that `consumer` would take once it has room. */
  holdsFor(consumer: QueueConsumer): boolean;
  /** Whether deliveries wait for the queue itself (its saved state), not for consumers' room. */
  paused(): boolean;
}

/** The part of a queue's consumption state that survives restarts. */
export interface AckState {
  /** Every offset below is settled. */
  floor: number;
  /** Settled offsets above the floor. */
  acked: number[];
  /**
   * Offsets below it may have gone to a consumer; none at or above it did. Saved before the
   * deliveries it covers, so that whoever opens the queue next (after a crash, on another broker)
   * sends those still unsettled as delivered before. Absent in states saved before it was kept.
   */
  delivered?: number;
}

export interface AckPersistence {
  load(): Promise<AckState | null>;
  save(state: AckState): Promise<void>;
}

export interface QueueOptions {
  /** Messages held in memory (ready plus unsettled); more are read from the log as room frees. */
  window: number;
  /** Bytes of messages held in memory, bounded as `window` bounds their number. */
  maxBytes: number;
  /** Where acks are kept; null for queues that start afresh (topic subscriptions, temporary queues). */
  persistence: AckPersistence | null;
  /** Start at the log's end (a topic subscription) instead of the first unsettled offset. */
  fromEnd: boolean;
  /** A rejected message goes here before it counts as settled; absent means it is dropped. */
  deadLetter: ((entry: Entry, reason: string) => Promise<void>) | null;
  onDropped: (reason: 'expired' | 'rejected' | 'corrupt', count: number) => void;
  logger: Logger;
}

const WAIT_MS = 5000;
const RETRY_MS = 1000;
/** Shortest gap between two saves of a queue's settled offsets. */
const ACK_SAVE_INTERVAL_MS = 250;
/**
 * The fewest offsets past the last delivery that a save records as possibly delivered: deliveries
 * go on without waiting for a save until they reach what was recorded.
 */
const MIN_DELIVERED_AHEAD = 128;

/**
 * A cursor over a message log that hands each message to one of its consumers (competing
 * consumers), highest priority first, and keeps it until it is settled: `accepted` settles it,
 * `released` and `modified` put it back, `rejected` dead-letters it. Unsettled messages of a
 * consumer that goes away go to the others. Settled offsets are persisted (coalesced), so after a
 * restart delivery resumes with the first unsettled message.
 */
export class MessageQueue implements ConsumedQueue {
  readonly consumers: QueueConsumer[] = [];
  private turn = 0;
  private readonly ready = new ReadyList();
  /**
   * Entries delivered and not yet settled, in `inflight[0 .. inflightCount)`, each knowing its slot:
   * an array that is never shortened, where a map keyed by offset would grow and shrink its table
   * with every burst of deliveries.
   */
  private readonly inflight: (Entry | undefined)[] = [];
  private inflightCount = 0;
  /** Bytes of the messages held in memory: ready, unsettled and being dead-lettered. */
  private heldBytes = 0;
  private readonly acked = new Set<number>();
  private floor = 0;
  private readOffset = 0;
  private knownEnd = 0;
  private paging = false;
  private pageAgain = false;
  private waiting = false;
  private pumpScheduled = false;
  private saving = false;
  private dirty = false;
  private lastSave = 0;
  private saveTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private listening = false;
  /** The first offset appended since `listen`, where a subscription from the end starts at the latest. */
  private firstSeen: number | null = null;
  private deadLettering = 0;
  /** Offsets below it may have gone to a consumer before the queue opened here (the saved `delivered`). */
  private deliveredBefore = 0;
  /** Offsets below it may be delivered: saved as `delivered` already. */
  private deliverable: number;
  /** One past the highest offset handed to a consumer (at least `deliveredBefore`). */
  private handedOut = 0;
  /** Deliveries since the last save started, which tell how far ahead the next one records. */
  private deliveriesSinceSave = 0;
  /** The offset of the message deliveries stopped at, past `deliverable`, until a save records it; else -1. */
  private waitingAt = -1;

  constructor(
    readonly name: string,
    readonly log: MessageLog,
    private readonly options: QueueOptions,
  ) {
    this.deliverable = options.persistence ? 0 : Infinity;
  }

  /**
   * Starts watching the log's appends before anything is read, so a subscription starting at the
   * end misses nothing appended from this moment on (the log may not even exist yet).
   */
  listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.paging = true;
    this.log.listeners.add(this.appended);
  }

  async open(): Promise<void> {
    // Appends while opening only raise knownEnd (and note the first offset); the first page reads them.
    this.listen();
    let end: number;
    let state: AckState | null | undefined;
    try {
      end = await this.log.end();
      state = this.options.fromEnd ? null : await this.options.persistence?.load();
    } finally {
      this.paging = false;
    }
    this.floor = this.options.fromEnd ? Math.min(end, this.firstSeen ?? end) : (state?.floor ?? 0);
    for (const offset of state?.acked ?? []) if (offset >= this.floor) this.acked.add(offset);
    this.readOffset = this.floor;
    this.knownEnd = Math.max(this.knownEnd, end);
    if (this.options.persistence) {
      this.deliveredBefore = Math.max(this.floor, state?.delivered ?? this.floor);
      this.deliverable = this.deliveredBefore;
      this.handedOut = this.deliveredBefore;
      if (!state) this.persist();
    }
    this.page();
  }

  /** Stops delivering; {@link flush} then saves what was delivered exactly, no longer ahead. */
  close(): void {
    this.closed = true;
    if (this.options.persistence && this.handedOut !== this.deliverable) this.dirty = true;
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
    }
    this.log.listeners.delete(this.appended);
    this.ready.clear();
  }

  /** Messages not yet settled (ready, unsettled, or still only in the log). */
  get depth(): number {
    return Math.max(0, this.knownEnd - this.floor - this.acked.size);
  }

  get unsettled(): number {
    return this.inflightCount;
  }

  /** Bytes of messages held in memory. */
  get memoryBytes(): number {
    return this.heldBytes;
  }

  addConsumer(consumer: QueueConsumer): void {
    this.consumers.push(consumer);
    this.schedulePump();
    this.page();
  }

  /** Removes a consumer; its unsettled messages go back to the queue with their delivery count raised. */
  removeConsumer(consumer: QueueConsumer): void {
    const at = this.consumers.indexOf(consumer);
    if (at >= 0) this.consumers.splice(at, 1);
    // From the end, so the entry moved into a freed slot has been looked at already.
    for (let i = this.inflightCount - 1; i >= 0; i--) {
      const entry = this.inflight[i]!;
      if (entry.holder !== consumer) continue;
      this.release(entry);
      entry.deliveryCount++;
      this.requeue(entry);
    }
    this.schedulePump();
  }

  /** Applies a consumer's outcome for its delivery of `entry`. */
  settle(entry: Entry, outcome: Outcome, consumer: QueueConsumer): void {
    if (entry.slot < 0 || entry.holder !== consumer) return;
    this.release(entry);
    switch (outcome.type) {
      case 'accepted':
        this.ack(entry);
        break;
      case 'released':
        this.requeue(entry);
        break;
      case 'modified':
        if (outcome.deliveryFailed) entry.deliveryCount++;
        if (outcome.undeliverableHere) (entry.refusedBy ??= new Set()).add(consumer);
        this.requeue(entry);
        break;
      case 'rejected':
        this.reject(entry, outcome.description ?? 'rejected by the consumer');
        break;
    }
    this.schedulePump();
  }

  holdsFor(consumer: QueueConsumer): boolean {
    for (const entry of this.ready.entries()) if (!entry.refusedBy?.has(consumer)) return true;
    return false;
  }

  paused(): boolean {
    return this.waitingAt >= 0;
  }

  /** Delivers to consumers with capacity now; called when credit or socket room appears. */
  schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.closed) return;
    const consumers = this.consumers;
    let idle = 0;
    const now = Date.now();
    while (this.ready.size > 0 && consumers.length > 0 && idle < consumers.length) {
      const consumer = consumers[this.turn++ % consumers.length]!;
      if (consumer.capacity() <= 0) {
        idle++;
        continue;
      }
      const entry = this.ready.take((e) => !e.refusedBy?.has(consumer));
      if (!entry) {
        idle++;
        continue;
      }
      idle = 0;
      if (entry.expiresAt <= now) {
        this.options.onDropped('expired', 1);
        this.ack(entry);
        continue;
      }
      if (entry.offset >= this.deliverable) {
        // Past what the saved state says may have gone out: a crash after this delivery would leave
        // whoever opens the queue next sending it as never delivered.
        this.ready.insert(entry);
        this.waitingAt = entry.offset;
        this.persist();
        break;
      }
      if (entry.offset >= this.handedOut) this.handedOut = entry.offset + 1;
      this.deliveriesSinceSave++;
      this.hold(entry, consumer);
      if (consumer.deliver(entry, this)) {
        this.release(entry);
        this.ack(entry);
      }
    }
    if (this.turn > 1e9) this.turn = 0;
    this.page();
  }

  private hold(entry: Entry, consumer: QueueConsumer): void {
    entry.holder = consumer;
    entry.slot = this.inflightCount;
    this.inflight[this.inflightCount++] = entry;
  }

  /** Takes an entry out of the unsettled ones: the last takes its slot. */
  private release(entry: Entry): void {
    const last = this.inflight[--this.inflightCount]!;
    this.inflight[entry.slot] = last;
    last.slot = entry.slot;
    this.inflight[this.inflightCount] = undefined;
    entry.slot = -1;
    entry.holder = null;
  }

  /** Messages that may still be taken into memory; none once their bytes reach `maxBytes`. */
  private room(): number {
    if (this.heldBytes >= this.options.maxBytes) return 0;
    return this.options.window - this.ready.size - this.inflightCount - this.deadLettering;
  }

  /**
   * Messages just appended are taken as they come while there is room; those past it stay in the
   * log and are read from there once room frees up.
   */
  private readonly appended = (baseOffset: number, messages: readonly Message[]): void => {
    this.knownEnd = Math.max(this.knownEnd, baseOffset + messages.length);
    this.firstSeen = Math.min(this.firstSeen ?? baseOffset, baseOffset);
    if (this.closed) return;
    if (this.paging) {
      this.pageAgain = true;
      return;
    }
    if (baseOffset === this.readOffset) {
      let taken = 0;
      while (taken < messages.length && this.room() > 0) {
        this.add(baseOffset + taken, messages[taken]!);
        taken++;
      }
      this.readOffset += taken;
      if (taken > 0) this.schedulePump();
    } else if (baseOffset > this.readOffset) {
      this.page();
    }
  };

  private add(offset: number, message: Message): void {
    if (this.acked.has(offset)) return;
    // Not known whether it went out: counted as a failed delivery, as AMQP 1.0 allows then.
    const deliveredBefore = offset < this.deliveredBefore;
    const facts = deliveryFacts(message);
    let size = message.payload.length;
    for (const header of message.headers) size += header.key.length + header.value.length;
    this.heldBytes += size;
    this.ready.push({
      offset,
      message,
      priority: facts.priority,
      expiresAt: facts.expiresAt,
      deliveryCount: deliveredBefore ? 1 : 0,
      redelivered: deliveredBefore,
      size,
      holder: null,
      slot: -1,
    });
  }

  private requeue(entry: Entry): void {
    entry.redelivered = true;
    this.ready.insert(entry);
  }

  private reject(entry: Entry, reason: string): void {
    const deadLetter = this.options.deadLetter;
    if (!deadLetter) {
      this.options.onDropped('rejected', 1);
      this.ack(entry);
      return;
    }
    this.deadLettering++;
    deadLetter(entry, reason).then(
      () => {
        this.deadLettering--;
        this.ack(entry);
      },
      (error: unknown) => {
        this.deadLettering--;
        this.options.logger.error(
          { err: error, queue: this.name },
          'dead-lettering failed; message requeued',
        );
        if (!this.closed) this.requeue(entry);
        this.schedulePump();
      },
    );
  }

  /** The entry is settled: it leaves memory, and its offset counts as done. */
  private ack(entry: Entry): void {
    this.heldBytes -= entry.size;
    const offset = entry.offset;
    if (offset < this.floor) return;
    if (offset !== this.floor) {
      this.acked.add(offset);
      this.persist();
      return;
    }
    // Settled in order (the usual case): the set is not touched, so its table neither grows nor shrinks.
    this.floor++;
    while (this.acked.size > 0 && this.acked.delete(this.floor)) this.floor++;
    this.log.trim(this.floor);
    this.persist();
  }

  /** Marks offsets that no longer exist in the log (retention) as settled. */
  private settleGap(from: number, to: number): void {
    if (from <= this.floor) {
      this.floor = Math.max(this.floor, to);
      for (const offset of this.acked) if (offset < this.floor) this.acked.delete(offset);
      while (this.acked.delete(this.floor)) this.floor++;
      this.persist();
    } else {
      for (let offset = from; offset < to; offset++) this.acked.add(offset);
    }
  }

  /**
   * Saves the settled offsets: at most one save in flight, and at most one every
   * `ACK_SAVE_INTERVAL_MS`, so a busy queue costs the meta store a few writes a second.
   */
  private persist(): void {
    // Closed, the queue may be another broker's now, which reads back what was saved.
    if (!this.options.persistence || this.closed) return;
    this.dirty = true;
    if (this.saving) return;
    // Deliveries waiting for a save do not wait out the interval as well.
    const urgent = this.paused();
    if (this.saveTimer && urgent) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
    }
    if (this.saveTimer) return;
    const wait = urgent ? 0 : Math.max(0, this.lastSave + ACK_SAVE_INTERVAL_MS - Date.now());
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      void this.save();
    }, wait);
    this.saveTimer.unref();
  }

  private async save(): Promise<void> {
    const persistence = this.options.persistence!;
    this.saving = true;
    this.dirty = false;
    this.lastSave = Date.now();
    const delivered = this.deliveredToSave();
    this.deliveriesSinceSave = 0;
    const state: AckState = { floor: this.floor, acked: [...this.acked], delivered };
    try {
      await persistence.save(state);
      this.saving = false;
      if (!this.closed && delivered > this.deliverable) {
        this.deliverable = delivered;
        if (this.waitingAt >= 0 && this.waitingAt < delivered) {
          this.waitingAt = -1;
          this.schedulePump();
          for (const consumer of this.consumers) consumer.wake?.();
        }
      }
      if (this.dirty && !this.closed) this.persist();
    } catch (error) {
      this.saving = false;
      this.dirty = true;
      this.options.logger.error({ err: error, queue: this.name }, 'saving queue acks failed');
      if (!this.closed) setTimeout(() => this.persist(), RETRY_MS).unref();
    }
  }

  /**
   * What a save records as `delivered`: while the queue is open, ahead of the deliveries (past the
   * message they wait at, by twice as many as went out since the last save), so that they seldom
   * wait for a save; once it is closed, exactly where they stopped.
   */
  private deliveredToSave(): number {
    if (this.closed) return this.handedOut;
    const from = Math.max(this.handedOut, this.waitingAt + 1);
    return Math.max(this.deliverable, from + Math.max(MIN_DELIVERED_AHEAD, 2 * this.deliveriesSinceSave));
  }

  /** Saves what is settled now (on shutdown), instead of on the next tick of the interval. */
  async flush(): Promise<void> {
    if (!this.options.persistence) return;
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
    }
    while (this.saving) await new Promise((resolve) => setTimeout(resolve, 5));
    if (this.dirty) await this.save();
  }

  /** Reads from the log while there is room and something to read. */
  private page(): void {
    if (this.paging || this.closed) return;
    if (this.readOffset >= this.knownEnd || this.room() <= 0) {
      this.watch();
      return;
    }
    this.paging = true;
    this.pageAgain = false;
    void this.readMore().finally(() => {
      this.paging = false;
      if (this.closed) return;
      this.schedulePump();
      if (this.pageAgain) this.page();
      else this.watch();
    });
  }

  /** Each read takes all it returns (up to a megabyte or one record batch), so memory may pass the bounds by that. */
  private async readMore(): Promise<void> {
    try {
      while (!this.closed && this.room() > 0 && this.readOffset < this.knownEnd) {
        const from = this.readOffset;
        const { messages, nextOffset, damaged } = await this.log.read(from);
        if (this.closed) return;
        if (damaged) this.passOver(damaged.from, damaged.to, damaged.error);
        let expected = from;
        for (const message of messages) {
          if (message.offset < expected) continue;
          if (message.offset > expected) this.settleGap(expected, message.offset);
          this.add(message.offset, message);
          expected = message.offset + 1;
        }
        if (nextOffset > expected) this.settleGap(expected, nextOffset);
        if (nextOffset <= from) {
          this.knownEnd = from;
          return;
        }
        this.readOffset = nextOffset;
        this.knownEnd = Math.max(this.knownEnd, nextOffset);
      }
    } catch (error) {
      // A shard not found most likely belongs to a topic deleted a moment ago, whose queue closes.
      const level = isRobustMQError(error, ErrorCode.NotFound) ? 'warn' : 'error';
      this.options.logger[level]({ err: error, queue: this.name }, 'reading the queue failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
      this.pageAgain = true;
    }
  }

  /**
   * Stored messages that do not read back (a corrupt batch) can never be delivered: they are
   * logged, counted as dropped and settled, so the queue goes on with the messages after them
   * instead of stopping there for good.
   */
  private passOver(from: number, to: number, error: unknown): void {
    let count = to - Math.max(from, this.floor);
    for (const offset of this.acked) if (offset >= from && offset < to) count--;
    this.options.logger.error(
      { err: error, queue: this.name, from, to, messages: count },
      'corrupt messages skipped',
    );
    if (count > 0) this.options.onDropped('corrupt', count);
  }

  /**
   * While caught up and consumed, waits for messages appended by others (another protocol, a
   * Kafka producer) so they are delivered too.
   */
  private watch(): void {
    if (this.waiting || this.closed || this.consumers.length === 0 || this.readOffset < this.knownEnd) return;
    this.waiting = true;
    const at = this.readOffset;
    this.log.waitForData(at, WAIT_MS).then(
      () =>
        setImmediate(() => {
          this.waiting = false;
          if (this.closed) return;
          if (this.readOffset === at) this.knownEnd = Math.max(this.knownEnd, at + 1);
          this.page();
        }),
      () => {
        this.waiting = false;
      },
    );
  }

  /** What the admin API shows. */
  describe(): { depth: number; consumers: number; unsettled: number; ready: number } {
    return {
      depth: this.depth,
      consumers: this.consumers.length,
      unsettled: this.inflightCount,
      ready: this.ready.size,
    };
  }
}
