/** Where a message the broker sent with QoS 1 or 2 stands. */
export type InflightState = 'awaiting-puback' | 'awaiting-pubrec' | 'awaiting-pubcomp';

export interface Inflight<T> {
  readonly packetId: number;
  readonly message: T;
  state: InflightState;
}

/** The in-flight map of every flow that has sent nothing: only read, never added to. */
const NOTHING_IN_FLIGHT = new Map<number, Inflight<unknown>>();

/** What a PUBREC asks of the sender. */
export type PubrecOutcome = 'send-pubrel' | 'released' | 'unknown';

/**
 * The sender side of QoS 1 and 2 for one session (MQTT 5 section 4.3): packet identifiers, the
 * in-flight window (Receive Maximum) and the queue of messages waiting for it. A pure state
 * machine: the caller sends the packets.
 *
 * QoS 1: PUBLISH -> PUBACK. QoS 2: PUBLISH -> PUBREC, PUBREL -> PUBCOMP; the identifier is free
 * again only after PUBCOMP (or a PUBREC with an error reason code).
 */
export class OutboundFlow<T> {
  /** {@link NOTHING_IN_FLIGHT} until the first message is sent: most sessions are idle. */
  private inflight = NOTHING_IN_FLIGHT as Map<number, Inflight<T>>;
  private queue: T[] = [];
  private head = 0;
  private nextId = 1;

  /**
   * @param window most messages in flight at once
   * @param maxQueued most messages waiting for the window; past it {@link enqueue} refuses
   */
  constructor(
    public window: number,
    public maxQueued: number,
  ) {}

  get inflightCount(): number {
    return this.inflight.size;
  }

  get queuedCount(): number {
    return this.queue.length - this.head;
  }

  /** Whether another message may be sent now. */
  canSend(): boolean {
    return this.inflight.size < this.window;
  }

  /** Queues `message` for sending; false when the queue is full. */
  enqueue(message: T): boolean {
    if (this.queuedCount >= this.maxQueued) return false;
    this.queue.push(message);
    return true;
  }

  /**
   * Queues `message` even when the queue is full, taking out the oldest queued message to make
   * room (the drop-oldest policy); returns the one taken out, if any.
   */
  enqueueDroppingOldest(message: T): T | undefined {
    if (this.maxQueued === 0) return message;
    const evicted = this.queuedCount >= this.maxQueued ? this.dequeue() : undefined;
    this.queue.push(message);
    return evicted;
  }

  /** Queues `message` whatever the limit (restoring a stored session). */
  restoreQueued(message: T): void {
    this.queue.push(message);
  }

  /** Puts back a message that was in flight with `packetId` (restoring a stored session). */
  restoreInflight(packetId: number, message: T, state: InflightState): void {
    this.inflightToChange().set(packetId, { packetId, message, state });
  }

  /** The message in flight with `packetId`, if any. */
  peek(packetId: number): T | undefined {
    return this.inflight.get(packetId)?.message;
  }

  /** Takes the oldest queued message. */
  dequeue(): T | undefined {
    if (this.head === this.queue.length) return undefined;
    const message = this.queue[this.head]!;
    this.queue[this.head++] = undefined as T;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return message;
  }

  /** The queued messages, oldest first, without taking them. */
  queued(): readonly T[] {
    return this.queue.slice(this.head);
  }

  /** Registers `message` as sent with `qos` and returns its packet identifier. */
  send(message: T, qos: 1 | 2): number {
    const packetId = this.allocate();
    this.inflightToChange().set(packetId, {
      packetId,
      message,
      state: qos === 1 ? 'awaiting-puback' : 'awaiting-pubrec',
    });
    return packetId;
  }

  /** A PUBACK arrived: the message it completes, or null for an unknown identifier. */
  puback(packetId: number): T | null {
    const entry = this.inflight.get(packetId);
    if (!entry || entry.state !== 'awaiting-puback') return null;
    this.inflight.delete(packetId);
    return entry.message;
  }

  /**
   * A PUBREC arrived. `failed` (an MQTT 5 reason code >= 0x80) ends the exchange; otherwise a
   * PUBREL is due, also when the PUBREC repeats.
   */
  pubrec(packetId: number, failed: boolean): PubrecOutcome {
    const entry = this.inflight.get(packetId);
    if (!entry || entry.state === 'awaiting-puback') return 'unknown';
    if (entry.state === 'awaiting-pubrec' && failed) {
      this.inflight.delete(packetId);
      return 'released';
    }
    entry.state = 'awaiting-pubcomp';
    return 'send-pubrel';
  }

  /** A PUBCOMP arrived: the message it completes, or null for an unknown identifier. */
  pubcomp(packetId: number): T | null {
    const entry = this.inflight.get(packetId);
    if (!entry || entry.state !== 'awaiting-pubcomp') return null;
    this.inflight.delete(packetId);
    return entry.message;
  }

  /** Drops an in-flight message without an acknowledgement (it could not be sent at all). */
  discard(packetId: number): void {
    this.inflight.delete(packetId);
  }

  /** Messages in flight, in the order they were sent: what to send again on reconnect. */
  pending(): IterableIterator<Inflight<T>> {
    return this.inflight.values();
  }

  /** Forgets everything in flight and queued. */
  clear(): void {
    this.inflight = NOTHING_IN_FLIGHT as Map<number, Inflight<T>>;
    this.queue = [];
    this.head = 0;
  }

  private inflightToChange(): Map<number, Inflight<T>> {
    if ((this.inflight as Map<number, Inflight<unknown>>) === NOTHING_IN_FLIGHT) this.inflight = new Map();
    return this.inflight;
  }

  private allocate(): number {
    if (this.inflight.size >= 65_535) throw new Error('no free packet identifier');
    let id = this.nextId;
    while (this.inflight.has(id)) id = id === 65_535 ? 1 : id + 1;
    this.nextId = id === 65_535 ? 1 : id + 1;
    return id;
  }
}
