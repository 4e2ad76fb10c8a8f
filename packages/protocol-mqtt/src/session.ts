import type { Logger } from '@robustmq/core';
import { encodeAck } from './codec/encode.js';
import type { Connection } from './connection.js';
import { InboundFlow } from './inbound-flow.js';
import type { MqttMetrics } from './metrics.js';
import { OutboundFlow, type Inflight, type PubrecOutcome } from './outbound-flow.js';
import type { Publication } from './publication.js';
import type { SubscriptionOptions } from './subscription-tree.js';
import { LongTimer } from './timers.js';
import type { PendingWill, StoredWill } from './wills.js';
import { EXACTLY_ONCE_MEMORY_MS, type LogEntry, type SessionLog, type WriteBarrier } from './session-log.js';
import { storeMessage } from './stored-message.js';

/** A QoS 1 or 2 message on its way to one session. */
export interface Delivery {
  readonly publication: Publication;
  readonly qos: 1 | 2;
  /** The RETAIN flag to send. */
  readonly retain: boolean;
  readonly subscriptionIds: readonly number[] | null;
  /** Its number in the session log; 0 when the session is not persistent. */
  readonly seq: number;
  /** The key of the shared group it came through, so another member can take it over. */
  readonly shared?: string;
}

/** What the session does when its queue is full. */
export type QueueFullPolicy = 'drop_newest' | 'drop_oldest';

/** How many message ids a session in a cluster remembers ({@link Session.recentUids}). */
const RECENT_UIDS = 1024;
/** At most this many exactly-once message ids are remembered per session, however many come. */
const MAX_EXACTLY_ONCE_IDS = 65_536;

/** Session Expiry Interval meaning "never" (MQTT 5 section 3.1.2.11.2). */
export const NEVER_EXPIRES = 0xffff_ffff;

/**
 * The state the broker keeps for a client id across its connections: subscriptions, QoS 1/2
 * messages in flight and queued, QoS 2 identifiers awaiting release, expiry and a delayed will.
 * Held in memory; it outlives a connection for as long as its expiry interval says. A persistent
 * session also writes every change to its {@link SessionLog}, so it survives a restart.
 */
export class Session {
  connection: Connection | null = null;
  readonly subscriptions = new Map<string, SubscriptionOptions>();
  readonly outbound: OutboundFlow<Delivery>;
  readonly inbound = new InboundFlow();
  /** Seconds the session outlives its connection; {@link NEVER_EXPIRES} for ever. */
  expiryInterval = 0;
  ended = false;
  /** Where a persistent session is stored; null while it is not persistent. */
  log: SessionLog | null = null;
  /** The next log sequence number. */
  nextSeq = 1;
  /** When its last connection went away, ms since the epoch; null while connected. */
  disconnectedAt: number | null = null;
  private expiryTimer: LongTimer | null = null;
  private pendingWill: PendingWill | null = null;
  /**
   * Messages that were in flight when the client came back and are still to be sent again, in
   * their order: more than its Receive Maximum lets the broker send at once. Null when none are.
   */
  private unresent: Inflight<Delivery>[] | null = null;
  /**
   * In a cluster, the ids of the last messages given to this session (a ring, in no order): what
   * a broker taking the session over must not give it again.
   */
  readonly recentUids: string[] = [];
  private recentAt = 0;
  /**
   * The ids of the exactly-once messages given to this session lately, with when (oldest first):
   * such a message routed again after a crash is not given twice. Null until the first.
   */
  private exactlyOnceIds: Map<string, number> | null = null;
  /**
   * While this session only stands in for one being moved here from another broker: what a QoS
   * 1/2 delivery waits for, as it is not durable until the moved session takes it over.
   */
  standIn: Promise<void> | null = null;
  /** Whether messages are being dropped for a full queue: logged once, until the queue has room. */
  private dropping = false;

  constructor(
    readonly clientId: string,
    private readonly metrics: MqttMetrics,
    private readonly maxInflight: number,
    maxQueued: number,
    private readonly queueFullPolicy: QueueFullPolicy,
    private readonly barrier: WriteBarrier,
    private readonly logger: Logger,
  ) {
    this.outbound = new OutboundFlow(maxInflight, maxQueued);
  }

  /** Sends or queues one message for this session at `qos` (already lowered to the subscription's). */
  deliver(
    publication: Publication,
    qos: number,
    retain: boolean,
    subscriptionIds: readonly number[] | null,
    now: number,
    shared: string | null = null,
  ): void {
    // A message can reach a session after its expiry (a delayed message, a shared group's message
    // passed on from a member that left): past it, onward delivery must not start (MQTT-3.3.2-5).
    if (publication.isExpired(now)) {
      this.metrics.dropped('expired');
      return;
    }
    if (publication.exactlyOnce && publication.uid !== null) {
      if (this.exactlyOnceIds?.has(publication.uid)) {
        this.metrics.dropped('duplicate');
        return;
      }
      this.rememberExactlyOnce(publication.uid, now);
    }
    const connection = this.connection;
    if (publication.uid !== null) {
      this.recentUids[this.recentAt] = publication.uid;
      this.recentAt = (this.recentAt + 1) % RECENT_UIDS;
    }
    if (qos === 0) {
      if (connection !== null) connection.sendQos0(publication, retain, subscriptionIds, now);
      return;
    }
    if (this.standIn !== null) this.barrier.add(this.standIn);
    const log = this.log;
    const direct =
      connection !== null &&
      this.outbound.queuedCount === 0 &&
      this.outbound.canSend() &&
      !connection.congested();
    if (this.dropping && this.outbound.queuedCount < this.outbound.maxQueued) this.dropping = false;
    if (
      !direct &&
      this.queueFullPolicy === 'drop_newest' &&
      this.outbound.queuedCount >= this.outbound.maxQueued
    ) {
      this.droppedForFullQueue();
      return;
    }
    let seq = 0;
    if (log !== null) {
      seq = this.nextSeq++;
      this.barrier.add(
        log.append({
          t: 'm',
          s: seq,
          m: storeMessage(publication),
          q: qos as 1 | 2,
          r: retain,
          ids: subscriptionIds,
          ...(shared === null ? {} : { g: shared }),
        }),
      );
    }
    const delivery: Delivery = {
      publication,
      qos: qos as 1 | 2,
      retain,
      subscriptionIds,
      seq,
      ...(shared === null ? {} : { shared }),
    };
    if (direct) {
      this.transmit(connection, delivery, now);
      return;
    }
    publication.detach();
    if (this.queueFullPolicy === 'drop_newest') {
      this.outbound.enqueue(delivery);
      return;
    }
    const evicted = this.outbound.enqueueDroppingOldest(delivery);
    if (evicted !== undefined) {
      this.droppedForFullQueue();
      this.done(evicted);
    }
  }

  /** Counts a message dropped for a full queue; the first of a run is logged, as Mosquitto does. */
  private droppedForFullQueue(): void {
    this.metrics.dropped('queue_full');
    if (this.dropping) return;
    this.dropping = true;
    this.logger.warn(
      { clientId: this.clientId, queued: this.outbound.maxQueued, policy: this.queueFullPolicy },
      'queue full: messages for this client are being dropped',
    );
  }

  /** PUBACK from the client; false for an unknown packet id. */
  puback(packetId: number): boolean {
    const delivery = this.outbound.puback(packetId);
    if (delivery === null) return false;
    this.done(delivery);
    return true;
  }

  /**
   * PUBREC from the client; `failed` is an MQTT 5 error reason code. `stored` settles once the
   * PUBREC is in the session's log: PUBREL waits for it, since a client that got PUBREL may hand
   * the message on and forget it, and a broker taking the session over after a crash would
   * otherwise send the message again as new.
   */
  pubrec(packetId: number, failed: boolean): { outcome: PubrecOutcome; stored: Promise<void> | null } {
    const delivery = this.outbound.peek(packetId);
    const outcome = this.outbound.pubrec(packetId, failed);
    let stored: Promise<void> | null = null;
    if (delivery !== undefined) {
      if (outcome === 'released') this.done(delivery);
      else if (outcome === 'send-pubrel' && this.log !== null && delivery.seq !== 0) {
        stored = this.log.append({ t: 'r', s: delivery.seq });
      }
    }
    return { outcome, stored };
  }

  /** PUBCOMP from the client; false for an unknown packet id. */
  pubcomp(packetId: number): boolean {
    const delivery = this.outbound.pubcomp(packetId);
    if (delivery === null) return false;
    this.done(delivery);
    return true;
  }

  /** Whether an exactly-once message with id `uid` was given to this session lately. */
  hasExactlyOnce(uid: string): boolean {
    return this.exactlyOnceIds?.has(uid) ?? false;
  }

  /** Notes an exactly-once message given to the session (or found in its log at a restore). */
  rememberExactlyOnce(uid: string, now: number): void {
    const ids = (this.exactlyOnceIds ??= new Map());
    ids.set(uid, now);
    for (const [oldest, at] of ids) {
      if (at > now - EXACTLY_ONCE_MEMORY_MS && ids.size <= MAX_EXACTLY_ONCE_IDS) break;
      ids.delete(oldest);
    }
  }

  /**
   * An inbound QoS 2 PUBLISH was accepted. A persistent session stores its id before PUBREC goes
   * out and, given `publication`, the message with it: such a message is routed only once that is
   * durable, so a broker taking the session over after a crash finds it and routes it again if it
   * was not known to be routed (sessions that had it drop the repeat by its id). The returned
   * write settles once durable; null for a session that is not persistent.
   */
  inboundAccepted(packetId: number, publication: Publication | null): Promise<void> | null {
    this.inbound.accept(packetId);
    if (this.log === null) return null;
    return this.log.append(
      publication === null ? { t: 'i', p: packetId } : { t: 'i', p: packetId, m: storeMessage(publication) },
    );
  }

  /** The message accepted with `packetId` is routed: taking the session over will not route it again. */
  inboundRouted(packetId: number, routing: Promise<void>): void {
    this.inbound.routed(packetId, routing);
    if (this.log !== null) void this.log.append({ t: 'd', p: packetId }).catch(() => {});
  }

  /**
   * PUBREL from the client: whether the id was known, and the write of its release, which PUBCOMP
   * waits for (a client may use the id again once it has PUBCOMP, and a broker taking the session
   * over must not take that new message for a repeat).
   */
  inboundReleased(packetId: number): { known: boolean; stored: Promise<void> | null } {
    const known = this.inbound.release(packetId);
    const stored = known && this.log !== null ? this.log.append({ t: 'I', p: packetId }) : null;
    return { known, stored };
  }

  /** A message needs nothing more: logged as done; an empty session lets its log go. */
  private done(delivery: Delivery): void {
    this.write({ t: 'a', s: delivery.seq }, delivery);
    if (
      this.log !== null &&
      this.outbound.inflightCount === 0 &&
      this.outbound.queuedCount === 0 &&
      this.inbound.size === 0
    ) {
      this.log.truncate();
    }
  }

  private write(entry: LogEntry, delivery: Delivery): void {
    // Failures are logged by the log itself; losing one only means a message comes again.
    if (this.log !== null && delivery.seq !== 0) void this.log.append(entry).catch(() => {});
  }

  /** Sends queued messages while the window and the socket allow. */
  pump(now: number): void {
    const connection = this.connection;
    if (connection === null) return;
    if (this.unresent !== null && !this.resendWithinWindow(connection, now)) return;
    while (this.outbound.queuedCount > 0 && this.outbound.canSend() && !connection.congested()) {
      const delivery = this.outbound.dequeue()!;
      if (delivery.publication.isExpired(now)) {
        this.metrics.dropped('expired');
        this.done(delivery);
        continue;
      }
      this.transmit(connection, delivery, now);
    }
  }

  /** Binds the session to a new connection: no expiry, no delayed will, the client's window. */
  attach(connection: Connection): void {
    this.expiryTimer?.cancel();
    this.expiryTimer = null;
    this.pendingWill?.cancel();
    this.pendingWill = null;
    this.connection = connection;
    this.disconnectedAt = null;
    this.outbound.window = Math.min(this.maxInflight, connection.clientReceiveMaximum);
  }

  /** After CONNACK: sends again what was in flight (PUBLISH with DUP, or PUBREL), then the queue. */
  resume(now: number): void {
    const connection = this.connection;
    if (connection === null) return;
    const inflight = [...this.outbound.pending()];
    // PUBREL is never held back for the window (MQTT-3.3.4-10), though it takes a place in it.
    let room = this.outbound.window - inflight.filter((entry) => entry.state === 'awaiting-pubcomp').length;
    const unresent: Inflight<Delivery>[] = [];
    for (const entry of inflight) {
      if (entry.state === 'awaiting-pubcomp') connection.write(encodeAck('pubrel', entry.packetId));
      else if (unresent.length > 0 || room <= 0) unresent.push(entry);
      else if (this.sendAgain(connection, entry, now)) room--;
    }
    this.unresent = unresent.length > 0 ? unresent : null;
    this.pump(now);
  }

  /**
   * Sends again, in order, the messages in flight before the client came back that it had no
   * room for, as long as no more than its Receive Maximum are then unacknowledged
   * (MQTT-3.3.4-9). Returns whether all have been.
   */
  private resendWithinWindow(connection: Connection, now: number): boolean {
    // Those acknowledged meanwhile (PUBACK, or PUBREC, whose PUBREL went out then) are done with.
    const waiting = this.unresent!.filter(
      (entry) => this.outbound.peek(entry.packetId) === entry.message && entry.state !== 'awaiting-pubcomp',
    );
    let outstanding = this.outbound.inflightCount - waiting.length;
    let next = 0;
    while (next < waiting.length && outstanding < this.outbound.window && !connection.congested()) {
      if (this.sendAgain(connection, waiting[next++]!, now)) outstanding++;
    }
    this.unresent = next < waiting.length ? waiting.slice(next) : null;
    return this.unresent === null;
  }

  /** A PUBLISH in flight, sent again with DUP; false when it no longer fits the client. */
  private sendAgain(connection: Connection, entry: Inflight<Delivery>, now: number): boolean {
    if (connection.sendPublish(entry.message, entry.packetId, true, now)) return true;
    // Over the Maximum Packet Size the client came back with: as if sent (MQTT-3.1.2-25), so that
    // it does not hold a place in the client's window for ever.
    this.outbound.discard(entry.packetId);
    this.metrics.dropped('too_large');
    this.done(entry.message);
    return false;
  }

  /** Ms until a disconnected session expires (negative: overdue); Infinity while connected. */
  expiresIn(now: number): number {
    if (this.disconnectedAt === null || this.expiryInterval === NEVER_EXPIRES) return Infinity;
    return this.disconnectedAt + this.expiryInterval * 1000 - now;
  }

  /** Starts the expiry clock once the connection is gone (`elapsedMs` since it went). */
  startExpiry(onExpire: () => void, elapsedMs = 0): void {
    if (this.expiryInterval === NEVER_EXPIRES) return;
    this.expiryTimer = new LongTimer(Math.max(0, this.expiryInterval * 1000 - elapsedMs), onExpire);
  }

  /** The will waiting for its delay, as stored, if there is one. */
  get heldWill(): StoredWill | null {
    return this.pendingWill?.pending ? this.pendingWill.stored : null;
  }

  /** A will waiting for its delay; the session's end publishes it at once. */
  holdWill(will: PendingWill): void {
    this.pendingWill?.fire();
    this.pendingWill = will;
  }

  /**
   * The messages that came through a shared subscription and the client has not received for
   * sure (queued, or sent at QoS 1 without PUBACK): what another member of the group should get.
   * A QoS 2 message once sent is this client's alone, even if its session ends (MQTT-4.8.2-5).
   */
  sharedUnacknowledged(): Delivery[] {
    const found: Delivery[] = [];
    for (const entry of this.outbound.pending()) {
      if (entry.message.shared !== undefined && entry.state === 'awaiting-puback') found.push(entry.message);
    }
    for (const delivery of this.outbound.queued()) if (delivery.shared !== undefined) found.push(delivery);
    return found;
  }

  /** Ends the session: timers stop, a delayed will is published, state is dropped. */
  end(): void {
    this.ended = true;
    this.expiryTimer?.cancel();
    this.expiryTimer = null;
    const will = this.pendingWill;
    this.pendingWill = null;
    will?.fire();
    this.unresent = null;
    this.outbound.clear();
    this.inbound.clear();
    this.subscriptions.clear();
  }

  /** Drops the session without publishing its delayed will (the broker is stopping). */
  discard(): void {
    this.pendingWill?.cancel();
    this.pendingWill = null;
    this.end();
  }

  private transmit(connection: Connection, delivery: Delivery, now: number): void {
    const packetId = this.outbound.send(delivery, delivery.qos);
    if (!connection.sendPublish(delivery, packetId, false, now)) {
      this.outbound.discard(packetId);
      this.metrics.dropped('too_large');
      this.done(delivery);
      return;
    }
    this.write({ t: 's', s: delivery.seq, p: packetId }, delivery);
  }
}
