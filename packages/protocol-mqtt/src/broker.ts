import { randomUUID } from 'node:crypto';
import type { BrokerContext, Logger, Message, MessageOrigin } from '@robustmq/core';
import { KeepAliveWatch } from './keep-alive.js';
import { TopicBindings } from './bindings.js';
import type { MqttSettings } from './config.js';
import type { Connection } from './connection.js';
import type { EnhancedAuthMethod } from './enhanced-auth.js';
import { MqttMetrics } from './metrics.js';
import { Publication } from './publication.js';
import { RetainedStore } from './retained-store.js';
import { RouterBridge } from './router-bridge.js';
import { Persistence, type StoredSession } from './persistence.js';
import { PeerBrokers } from './peer-brokers.js';
import { WriteBarrier, type LogEntry, type SessionRecord } from './session-log.js';
import { NEVER_EXPIRES, Session, type Delivery } from './session.js';
import { loadMessage } from './stored-message.js';
import { DelayedPublications } from './delayed-publish.js';
import { SharedGroups } from './shared-groups.js';
import {
  SubscriptionTree,
  type Match,
  type Subscription,
  type SubscriptionOptions,
} from './subscription-tree.js';
import { SysTopics } from './sys-topics.js';
import { parseFilter } from './topic-names.js';
import { loadWill, PendingWill, storeWill, willPublication, type StoredWill, type Will } from './wills.js';
import { ClientAuthorization } from './authorization.js';

/** A session standing in for one moving here from another broker ({@link MqttBroker.standIn}). */
export interface StandIn {
  readonly session: Session;
  /** Takes its subscriptions out (idempotent). */
  remove(): void;
  /** Lets the publishers of what it kept have their acknowledgements (idempotent). */
  finish(): void;
}

/** Where an MQTT message published earlier (delayed, or on another broker) entered. */
function publisherOrigin(publication: Publication): MessageOrigin {
  return {
    protocol: 'mqtt',
    ...(publication.publisherId ? { clientId: publication.publisherId } : {}),
  };
}

/** Messages from other protocols reach MQTT subscribers at most at this QoS. */
const FOREIGN_QOS = 1;

/**
 * The MQTT broker state of one node: sessions by client id, the subscription tree, retained
 * messages, and the routing between them and the node's router.
 */
export class MqttBroker {
  readonly sessions = new Map<string, Session>();
  readonly tree = new SubscriptionTree<Session>();
  /** `$share/` and `$queue/` subscriptions. */
  readonly shared = new SharedGroups();
  /** `$exclusive/` subscriptions, by session, and who holds each filter. */
  readonly exclusiveTree = new SubscriptionTree<Session>();
  readonly exclusive = new Map<string, Session>();
  readonly delayed: DelayedPublications;
  readonly retained = new RetainedStore();
  readonly connections = new Set<Connection>();
  readonly metrics: MqttMetrics;
  readonly logger: Logger;
  readonly persistence: Persistence;
  /** MQTT 5 enhanced authentication methods by name (set by the plugin before connections). */
  authMethods: ReadonlyMap<string, EnhancedAuthMethod> = new Map();
  /** Collects the durable writes of one publish. */
  readonly barrier = new WriteBarrier();
  /** Names this run of a broker alone in its message ids. */
  private readonly run = randomUUID().slice(0, 8);
  private messagesNamed = 0;
  /** MQTT topic filters bound to stored topics (`[[mqtt.bindings]]`). */
  readonly bindings: TopicBindings;
  private readonly bridge: RouterBridge;
  /** The other brokers on this node's storage, when there are any: sessions and messages move between them. */
  readonly peers: PeerBrokers | null;
  private recoveryDone!: () => void;
  /** Settles once {@link recover} is done: what other brokers ask of this one waits for it. */
  readonly recovered = new Promise<void>((resolve) => (this.recoveryDone = resolve));
  private readonly flushTimer: NodeJS.Timeout;
  private readonly keepAlive = new KeepAliveWatch(this.connections);
  readonly sys: SysTopics;

  constructor(
    readonly settings: MqttSettings,
    readonly context: BrokerContext,
  ) {
    this.logger = context.logger;
    this.metrics = new MqttMetrics(context.metrics);
    this.persistence = new Persistence(context);
    this.bindings = new TopicBindings(settings.bindings, context, this.logger);
    this.bridge = new RouterBridge(context.router, (message) => this.fromRouter(message), this.logger);
    this.bridge.start();
    this.flushTimer = setInterval(() => this.flushMetrics(), 1000);
    this.flushTimer.unref();
    this.delayed = new DelayedPublications(
      context.meta,
      this.logger,
      (publication) => this.publish(publication, publisherOrigin(publication), Date.now()),
      context.cluster ? context.cluster.nodeId : null,
    );
    this.sys = new SysTopics(this, settings.sysIntervalSeconds);
    this.peers = context.cluster ? new PeerBrokers(this, context.cluster) : null;
  }

  /**
   * Brings back what the previous run stored: retained messages, then persistent sessions with
   * their subscriptions and QoS 1/2 state. A session whose expiry passed while the node was down
   * is deleted.
   */
  async recover(): Promise<void> {
    try {
      // Bound topics exist before anything (a will, a delayed message) can be published to them.
      await this.bindings.start();
      const now = Date.now();
      for (const message of await this.persistence.loadRetained()) {
        if (!message.isExpired(now)) this.retained.set(message);
      }
      // In a cluster, each broker brings back the sessions it served; those of a broker that is
      // gone are taken over by the others (PeerBrokers).
      await this.peers?.start();
      const mine = this.peers ? this.peers.serves : () => true;
      const stored = await this.persistence.loadSessions(mine);
      this.restoreSessions(this.peers ? await this.peers.stillServed(stored) : stored, now);
      await this.delayed.recover();
      this.sys.start();
    } finally {
      this.recoveryDone();
    }
  }

  /**
   * Brings stored sessions back to life here: at start, or when this broker takes over the
   * sessions of one that is gone. Sessions whose expiry passed end at once.
   */
  restoreSessions(stored: readonly StoredSession[], now: number): Session[] {
    const dueWills: Array<() => void> = [];
    const unrouted: Unrouted[] = [];
    const expired: Session[] = [];
    const restored: Session[] = [];
    for (const one of stored) {
      const session = this.restoreSession(one, now, dueWills, unrouted);
      restored.push(session);
      if (session.expiryInterval !== NEVER_EXPIRES && session.expiresIn(now) <= 0) expired.push(session);
    }
    // Sessions that expired while nobody served them end now, their unacknowledged shared
    // messages going to other members of their groups.
    // Routed again once every session is back, so that each subscriber can get them (and those
    // that had them drop them).
    for (const message of unrouted) this.routeAgain(message, now);
    for (const session of expired) this.endSession(session);
    // Published once every live session is back, so that each subscriber can get them.
    for (const publish of dueWills) publish();
    return restored;
  }

  /**
   * Routes an exactly-once message found in its publisher's log without the mark that it was
   * routed (the broker that took it stopped in between); a resend of it waits for this.
   */
  private routeAgain({ session, packetId, publication }: Unrouted, now: number): void {
    publication.exactlyOnce = true;
    const origin: MessageOrigin = { protocol: 'mqtt', clientId: session.clientId };
    const routing: Promise<void> = Promise.resolve(this.publish(publication, origin, now)).then(() =>
      session.inboundRouted(packetId, routing),
    );
    routing.catch((error: unknown) =>
      this.logger.error(
        { err: error, clientId: session.clientId, packetId },
        'QoS 2 message not routed again',
      ),
    );
    session.inbound.accept(packetId, routing);
  }

  /**
   * Brings back one stored session. Its will (a client connected when the node stopped counts as
   * gone at start) is published at once when its delay, or the session, ran out while the node
   * was down, else held for the rest of its delay.
   */
  private restoreSession(
    { record, log, entries }: StoredSession,
    now: number,
    dueWills: Array<() => void>,
    unrouted: Unrouted[],
  ): Session {
    const elapsed = now - (record.disconnectedAt ?? now);
    const storedWill = record.will;
    const session = this.newSession(record.clientId);
    session.expiryInterval = record.expiryInterval;
    session.disconnectedAt = record.disconnectedAt ?? now;
    if (storedWill) {
      const publish = this.storedWillPublisher(storedWill, record.clientId);
      const delayMs = Math.min(storedWill.delayInterval, record.expiryInterval) * 1000 - elapsed;
      if (delayMs <= 0) dueWills.push(publish);
      else session.holdWill(new PendingWill(delayMs, () => this.willDue(session, publish), storedWill));
    }
    session.log = log;
    for (const [filter, options] of record.subscriptions) {
      this.subscribe(session, filter, options);
      // A session brought back here (a restart, a move) names this broker in the cluster's claims;
      // a SUBSCRIBE claims before it is granted (subscribe.ts).
      if (!this.peers) continue;
      const parsed = parseFilter(filter, Number.MAX_SAFE_INTEGER);
      if (typeof parsed !== 'string' && parsed.kind === 'exclusive')
        this.claimExclusive(parsed.filter, session);
    }
    const deliveries = new Map<
      number,
      { delivery: Delivery; packetId: number; state: 'queued' | 'sent' | 'pubrec' }
    >();
    const accepted = new Map<number, LogEntry & { t: 'i' }>();
    for (const entry of entries) {
      if (entry.t === 'm') {
        if (entry.m.exactlyOnce === true && entry.m.uid !== undefined) {
          session.rememberExactlyOnce(entry.m.uid, now);
        }
        const delivery: Delivery = {
          publication: loadMessage(entry.m),
          qos: entry.q,
          retain: entry.r,
          subscriptionIds: entry.ids,
          seq: entry.s,
          ...(entry.g === undefined ? {} : { shared: entry.g }),
        };
        deliveries.set(entry.s, { delivery, packetId: 0, state: 'queued' });
        if (entry.s >= session.nextSeq) session.nextSeq = entry.s + 1;
      } else if (entry.t === 's') {
        const found = deliveries.get(entry.s);
        if (found) {
          found.state = 'sent';
          found.packetId = entry.p;
        }
      } else if (entry.t === 'r') {
        const found = deliveries.get(entry.s);
        if (found) found.state = 'pubrec';
      } else if (entry.t === 'a') deliveries.delete(entry.s);
      else if (entry.t === 'i') {
        session.inbound.accept(entry.p);
        accepted.set(entry.p, entry);
      } else {
        // Routed ('d') or released ('I'): a PUBREL comes only after the PUBREC that routing gives.
        accepted.delete(entry.p);
        if (entry.t === 'I') session.inbound.release(entry.p);
      }
    }
    for (const { p, m } of accepted.values()) {
      if (m !== undefined) unrouted.push({ session, packetId: p, publication: loadMessage(m) });
    }
    for (const { delivery, packetId, state } of deliveries.values()) {
      if (state === 'queued') session.outbound.restoreQueued(delivery);
      else {
        session.outbound.restoreInflight(
          packetId,
          delivery,
          state === 'sent'
            ? delivery.qos === 1
              ? 'awaiting-puback'
              : 'awaiting-pubrec'
            : 'awaiting-pubcomp',
        );
      }
    }
    if (record.disconnectedAt === null) void log.saveRecord(this.sessionRecord(session, now)).catch(() => {});
    session.startExpiry(() => this.endSession(session), elapsed);
    return session;
  }

  /**
   * Routes a message from an MQTT client: retained store, bound stored topics, MQTT subscribers,
   * then the router for the other protocols. Returns the writes to wait for before acknowledging
   * it (stored retained message, appends to bound topics, persistent sessions' queues), or null
   * when there are none.
   */
  publish(publication: Publication, origin: MessageOrigin, now: number): Promise<void> | null {
    this.barrier.begin();
    // In a cluster every message has an id, also while no other broker is live: the sessions of
    // one that just left, taken over meanwhile, must not get it twice. An exactly-once message
    // has one already, the same each time it is routed.
    if (this.peers !== null) publication.uid ??= this.peers.nextUid();
    // Routed again after a crash, an exactly-once message does not replace a newer retained one.
    const superseded =
      publication.exactlyOnce &&
      (this.retained.get(publication.topic)?.timestamp ?? -1) > publication.timestamp;
    if (publication.retain && !superseded) {
      this.retained.set(publication);
      this.barrier.add(this.persistence.saveRetained(publication));
    }
    if (this.bindings.active) {
      const appended = this.bindings.append(publication);
      if (appended !== null) this.barrier.add(appended);
    }
    this.route(publication, now);
    this.routeAfterTakeover(publication);
    this.peers?.routedHere(publication);
    this.bridge.publish(publication, origin);
    if (this.peers !== null) {
      const forwarded = this.peers.forwardRouted(publication, origin.protocol, () =>
        this.sharedElsewhere(publication.topic),
      );
      if (forwarded !== null) this.barrier.add(forwarded);
    }
    return this.barrier.end();
  }

  /** A new message id, unique across brokers and their runs ({@link Publication.uid}). */
  newMessageId(): string {
    return this.peers?.nextUid() ?? `${this.run}.${(this.messagesNamed++).toString(36)}`;
  }

  /**
   * A message another broker of the cluster routed (its retained store, bound topics and durable
   * writes are that broker's): delivered to the sessions here, and to this node's other protocols
   * when an MQTT client published it. Resolves once the sessions' queues hold it durably.
   */
  receiveForwarded(
    publication: Publication,
    originProtocol: string,
    sharedGroups: ReadonlySet<string>,
  ): Promise<void> | null {
    this.barrier.begin();
    const now = Date.now();
    if (publication.retain) this.retained.set(publication);
    this.route(publication, now, sharedGroups);
    this.routeAfterTakeover(publication);
    this.peers?.routedHere(publication);
    if (originProtocol === 'mqtt') this.bridge.publish(publication, publisherOrigin(publication));
    return this.barrier.end();
  }

  /** While sessions of brokers that left are being taken over here, they get the message too. */
  private routeAfterTakeover(publication: Publication): void {
    const later = this.peers?.afterTakeover(publication) ?? null;
    if (later !== null) this.barrier.add(later);
  }

  /**
   * A message routed for a broker that is gone, given only to the sessions `only` picks (those
   * taken over from it); it was retained and passed to the other protocols where it was published.
   * Resolves once the sessions hold it as durably as any delivery.
   */
  receiveOrphaned(
    publication: Publication,
    sharedGroups: ReadonlySet<string>,
    only: (session: Session) => boolean,
  ): Promise<void> | null {
    this.barrier.begin();
    this.route(publication, Date.now(), sharedGroups, only);
    return this.barrier.end();
  }

  /**
   * Makes `session` persistent (stored) or not, as its expiry interval says, and writes its
   * record. Resolves once the record is durable.
   */
  persist(session: Session, now: number): Promise<void> | null {
    if (session.expiryInterval === 0) {
      if (session.log !== null) {
        const log = session.log;
        session.log = null;
        this.persistence.destroy(log);
      }
      return null;
    }
    session.log ??= this.persistence.logFor(session.clientId);
    return session.log.saveRecord(this.sessionRecord(session, now));
  }

  private sessionRecord(session: Session, now: number): SessionRecord {
    const connection = session.connection;
    let will: StoredWill | null;
    if (connection === null) will = session.heldWill;
    else {
      const principal = connection.authorization?.principal;
      will = connection.will && principal ? storeWill(connection.will, principal) : null;
    }
    return {
      clientId: session.clientId,
      ...(this.peers === null ? {} : { node: this.context.nodeId }),
      expiryInterval: session.expiryInterval,
      subscriptions: [...session.subscriptions],
      disconnectedAt: connection === null ? (session.disconnectedAt ?? now) : null,
      ...(will === null ? {} : { will }),
    };
  }

  /** Publishes a will kept in a session record, authorized as its principal. */
  private storedWillPublisher(stored: StoredWill, clientId: string): () => void {
    return () =>
      this.publishWill(
        loadWill(stored),
        clientId,
        new ClientAuthorization(
          this.context.auth,
          stored.principal,
          this.settings.authorizationCacheSeconds * 1000,
          this.logger,
        ),
      );
  }

  /** A delayed will's time came: published, and the session record no longer holds it. */
  private willDue(session: Session, publish: () => void): void {
    publish();
    if (!session.ended && session.log !== null) void this.persist(session, Date.now())?.catch(() => {});
  }

  /**
   * Delivers to every MQTT session with a matching subscription, once each, and to one member of
   * each matching shared group here, or of those in `sharedGroups` when given (a message another
   * broker routed: it names the groups it left to this one).
   */
  route(
    publication: Publication,
    now: number,
    sharedGroups: ReadonlySet<string> | null = null,
    only: ((session: Session) => boolean) | null = null,
  ): number {
    let reached = this.routeTo(this.tree.match(publication.topic), publication, now, only);
    if (this.exclusive.size > 0) {
      reached += this.routeTo(this.exclusiveTree.match(publication.topic), publication, now, only);
    }
    if (this.shared.tree.size > 0) {
      for (const { subscriber: group } of this.shared.tree.match(publication.topic)) {
        if (sharedGroups !== null && !sharedGroups.has(group.key)) continue;
        // Routed again after a crash: a group whose member here had it has it.
        const uid = publication.exactlyOnce ? publication.uid : null;
        if (uid !== null && group.firstWhere((s) => s.hasExactlyOnce(uid)) !== null) continue;
        // Restricted to some sessions, any member among them takes it, whoever's turn it is.
        const member = only === null ? group.pick() : group.firstWhere(only);
        if (member === null) continue;
        const [session, options] = member;
        session.deliver(
          publication,
          Math.min(options.qos, publication.qos),
          options.retainAsPublished && publication.retain,
          options.subscriptionId === 0 ? null : [options.subscriptionId],
          now,
          group.key,
        );
        reached++;
      }
    }
    return reached;
  }

  private routeTo(
    matches: readonly Match<Session>[],
    publication: Publication,
    now: number,
    only: ((session: Session) => boolean) | null,
  ): number {
    let reached = 0;
    for (let i = 0; i < matches.length; i++) {
      const { subscriber: session, subscriptions } = matches[i]!;
      if (only !== null && !only(session)) continue;
      if (subscriptions.length === 1) {
        const options = subscriptions[0]!.options;
        if (options.noLocal && publication.publisherId === session.clientId) continue;
        session.deliver(
          publication,
          options.qos < publication.qos ? options.qos : publication.qos,
          options.retainAsPublished && publication.retain,
          options.subscriptionId === 0 ? null : [options.subscriptionId],
          now,
        );
        reached++;
      } else if (this.deliverMerged(session, subscriptions, publication, now)) {
        reached++;
      }
    }
    return reached;
  }

  /**
   * Overlapping subscriptions of one client: one delivery at the highest QoS granted, carrying
   * every subscription identifier (MQTT 5 section 3.3.4).
   */
  private deliverMerged(
    session: Session,
    subscriptions: readonly Subscription<Session>[],
    publication: Publication,
    now: number,
  ): boolean {
    let qos = -1;
    let retain = false;
    let ids: number[] | null = null;
    for (const { options } of subscriptions) {
      if (options.noLocal && publication.publisherId === session.clientId) continue;
      if (options.qos > qos) qos = options.qos;
      if (options.retainAsPublished && publication.retain) retain = true;
      if (options.subscriptionId !== 0) (ids ??= []).push(options.subscriptionId);
    }
    if (qos < 0) return false;
    session.deliver(publication, Math.min(qos, publication.qos), retain, ids, now);
    return true;
  }

  /**
   * A message another protocol published on the router: delivered on its topic, or on the MQTT
   * topic its key names when it is a record of a bound stored topic.
   */
  private fromRouter(message: Message): void {
    if (this.tree.size === 0 && this.exclusive.size === 0 && this.shared.tree.size === 0) return;
    const topic = this.bindings.active ? this.bindings.deliveryTopic(message) : message.topic;
    // Until a subscription matches, only the topic (and the key, for a bound stored topic) is
    // read: a protocol may decode the rest lazily (Kafka does), and then it is never decoded.
    if (!this.hasSubscribers(topic)) return;
    const now = Date.now();
    const publication = Publication.fromMessage(message, FOREIGN_QOS, now, topic);
    const forward = this.peers?.mayForward === true;
    if (forward) publication.uid = this.peers.nextUid();
    this.route(publication, now);
    this.peers?.routedHere(publication);
    // Nobody waits for it: the protocol it came from acknowledged it on its own terms.
    if (forward) {
      void this.peers
        .forwardRouted(publication, 'foreign', () => this.sharedElsewhere(topic))
        ?.catch(() => {});
    }
  }

  /**
   * The shared groups matching `topic` that have no member here but have some on other brokers,
   * by the broker picked to serve each; null when there are none.
   */
  private sharedElsewhere(topic: string): Map<number, string[]> | null {
    const elsewhere = this.peers!.sharedGroups;
    if (elsewhere.tree.size === 0) return null;
    let picked: Map<number, string[]> | null = null;
    for (const { subscriber: group } of elsewhere.tree.match(topic)) {
      if (this.shared.get(group.key) !== undefined) continue;
      const broker = this.peers!.pickFor(group);
      if (broker === null) continue;
      picked ??= new Map();
      const keys = picked.get(broker);
      if (keys) keys.push(group.key);
      else picked.set(broker, [group.key]);
    }
    return picked;
  }

  /** Whether any MQTT subscription (plain, exclusive or shared) matches `topic`. */
  private hasSubscribers(topic: string): boolean {
    return (
      this.tree.match(topic).length > 0 ||
      (this.exclusive.size > 0 && this.exclusiveTree.match(topic).length > 0) ||
      (this.shared.tree.size > 0 && this.shared.tree.match(topic).length > 0)
    );
  }

  /**
   * A session standing in for `clientId`'s while it moves here from another broker: subscribed as
   * its record says (plain subscriptions; shared and exclusive ones join with the session itself),
   * it keeps what is published meanwhile for the session, which takes it over with
   * {@link deliverKept}. Its QoS 1/2 deliveries are acknowledged to their publishers only then.
   */
  standIn(clientId: string, record: SessionRecord): StandIn {
    const session = this.createSession(clientId);
    let finish: () => void = () => {};
    session.standIn = new Promise<void>((resolve) => (finish = resolve));
    for (const [filter, options] of record.subscriptions) {
      const parsed = parseFilter(filter, Number.MAX_SAFE_INTEGER);
      if (typeof parsed !== 'string' && parsed.kind === 'plain') this.subscribe(session, filter, options);
    }
    return {
      session,
      remove: () => {
        for (const filter of session.subscriptions.keys()) this.removeSubscription(session, filter);
        session.subscriptions.clear();
      },
      finish,
    };
  }

  /** Gives a stand-in made just now the messages routed here while it was being made. */
  keepFor(standIn: StandIn, routed: readonly Publication[]): void {
    if (routed.length === 0) return;
    const now = Date.now();
    const only = (session: Session) => session === standIn.session;
    this.barrier.begin();
    for (const publication of routed) this.route(publication, now, null, only);
    // Their publishers were answered already, or wait on the writes they were routed with.
    void this.barrier.end()?.catch(() => {});
  }

  /**
   * Gives `session` what its stand-in kept, but the messages it already had (by id: `had`, and
   * what it was given since it was restored); resolves once they are in its log.
   */
  deliverKept(session: Session, standIn: StandIn, had: ReadonlySet<string>): Promise<void> {
    standIn.remove();
    if (session.ended) return Promise.resolve();
    const given = new Set(session.recentUids);
    const now = Date.now();
    this.barrier.begin();
    for (const delivery of standIn.session.outbound.queued()) {
      const uid = delivery.publication.uid;
      if (uid !== null && (had.has(uid) || given.has(uid))) continue;
      session.deliver(delivery.publication, delivery.qos, delivery.retain, delivery.subscriptionIds, now);
    }
    return this.barrier.end() ?? Promise.resolve();
  }

  /**
   * Stops serving `session` here, without ending it: another broker of the cluster takes it over
   * from its stored record and log. Resolves once everything it wrote is stored.
   */
  async handOff(session: Session): Promise<void> {
    for (const filter of session.subscriptions.keys()) this.removeSubscription(session, filter);
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    const log = session.log;
    session.log = null;
    session.discard();
    if (log !== null) {
      await log.settled();
      this.persistence.forget(log);
    }
  }

  /**
   * Binds `connection` to the session of `clientId`, taking it over from another connection if
   * there is one. `clean` discards a previous session. Returns whether one was resumed.
   */
  attach(connection: Connection, clientId: string, clean: boolean): { session: Session; present: boolean } {
    const previous = this.sessions.get(clientId)?.connection;
    if (previous) previous.takeOver();
    let session = this.sessions.get(clientId);
    if (session && clean) {
      this.endSession(session);
      session = undefined;
    }
    const present = session !== undefined;
    session ??= this.newSession(clientId);
    session.attach(connection);
    return { session, present };
  }

  private newSession(clientId: string): Session {
    const session = this.createSession(clientId);
    this.sessions.set(clientId, session);
    return session;
  }

  private createSession(clientId: string): Session {
    return new Session(
      clientId,
      this.metrics,
      this.settings.maxInflightMessages,
      this.settings.maxQueuedMessages,
      this.settings.queueFullPolicy,
      this.barrier,
      this.logger,
    );
  }

  /**
   * A connection ended. Its will is published (after its delay) unless the client said goodbye;
   * its session ends now or when its expiry interval has passed.
   */
  detach(connection: Connection, will: Will | null, authorization: ClientAuthorization | null): void {
    const session = connection.session;
    if (!session || session.connection !== connection) return;
    session.connection = null;
    session.disconnectedAt = Date.now();
    if (will && authorization) {
      const publish = () => this.publishWill(will, session.clientId, authorization);
      const delay = Math.min(will.delayInterval, session.expiryInterval);
      if (delay > 0) {
        session.holdWill(
          new PendingWill(
            delay * 1000,
            () => this.willDue(session, publish),
            storeWill(will, authorization.principal),
          ),
        );
      } else publish();
    }
    if (session.expiryInterval === 0) this.endSession(session);
    else {
      void this.persist(session, Date.now())?.catch(() => {});
      session.startExpiry(() => this.endSession(session));
    }
  }

  endSession(session: Session): void {
    if (session.ended) return;
    const unacknowledged = session.sharedUnacknowledged();
    for (const filter of session.subscriptions.keys()) this.removeSubscription(session, filter);
    session.end();
    this.redeliverShared(unacknowledged);
    if (session.log !== null) {
      this.persistence.destroy(session.log);
      session.log = null;
    }
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  /**
   * Messages a member of a shared group did not acknowledge before its session ended: each goes
   * to another member of its group, if one is left.
   */
  private redeliverShared(deliveries: readonly Delivery[]): void {
    const now = Date.now();
    for (const delivery of deliveries) {
      const group = this.shared.get(delivery.shared!);
      const member = group?.pick();
      if (!member) continue;
      const [session, options] = member;
      session.deliver(
        delivery.publication,
        Math.min(options.qos, delivery.qos),
        false,
        options.subscriptionId === 0 ? null : [options.subscriptionId],
        now,
        group!.key,
      );
    }
  }

  /**
   * The session holding the exclusive subscription `filter` (the part after `$exclusive/`), if
   * another one than `session` does.
   */
  exclusiveHolder(session: Session, filter: string): Session | null {
    const holder = this.exclusive.get(filter);
    return holder === undefined || holder === session ? null : holder;
  }

  /**
   * Adds or replaces a subscription (`filter` as the client sent it, already valid); returns
   * true when it is new. An exclusive filter another session holds is the caller's to refuse.
   */
  subscribe(session: Session, filter: string, options: SubscriptionOptions): boolean {
    const parsed = parseFilter(filter, Number.MAX_SAFE_INTEGER);
    if (typeof parsed === 'string') return false;
    session.subscriptions.set(filter, options);
    let isNew: boolean;
    if (parsed.kind === 'shared') isNew = this.shared.add(session, parsed.group, parsed.filter, options);
    else if (parsed.kind === 'exclusive') {
      this.exclusive.set(parsed.filter, session);
      isNew = this.exclusiveTree.add(session, parsed.filter, options);
    } else isNew = this.tree.add(session, filter, options);
    if (isNew) this.bridge.filterAdded(parsed.filter);
    return isNew;
  }

  private claimExclusive(filter: string, session: Session): void {
    this.peers!.exclusive.claim(filter, session.clientId).catch((error: unknown) => {
      this.logger.warn({ err: error, filter }, 'an exclusive subscription was not claimed in the cluster');
    });
  }

  unsubscribe(session: Session, filter: string): boolean {
    if (!session.subscriptions.has(filter)) return false;
    this.removeSubscription(session, filter);
    session.subscriptions.delete(filter);
    return true;
  }

  private removeSubscription(session: Session, filter: string): void {
    const parsed = parseFilter(filter, Number.MAX_SAFE_INTEGER);
    if (typeof parsed === 'string') return;
    if (parsed.kind === 'shared') this.shared.remove(session, parsed.group, parsed.filter);
    else if (parsed.kind === 'exclusive') {
      this.exclusiveTree.remove(session, parsed.filter);
      if (this.exclusive.get(parsed.filter) === session) {
        this.exclusive.delete(parsed.filter);
        this.peers?.exclusive.release(parsed.filter, session.clientId);
      }
    } else this.tree.remove(session, filter);
    this.bridge.filterRemoved(parsed.filter);
  }

  /** Sends the retained messages matching a new subscription, with RETAIN set. */
  sendRetained(session: Session, filter: string, options: SubscriptionOptions): void {
    const now = Date.now();
    for (const message of this.retained.match(filter, now)) {
      session.deliver(
        message,
        Math.min(options.qos, message.qos),
        true,
        options.subscriptionId === 0 ? null : [options.subscriptionId],
        now,
      );
    }
  }

  private publishWill(will: Will, clientId: string, authorization: ClientAuthorization): void {
    const send = (allowed: boolean) => {
      if (!allowed) {
        this.logger.warn({ clientId, topic: will.topic }, 'will not published: not authorized');
        return;
      }
      const now = Date.now();
      this.metrics.messagesReceived++;
      void this.publish(willPublication(will, clientId, now), { protocol: 'mqtt', clientId }, now)?.catch(
        () => {},
      );
    };
    const allowed = authorization.check('publish', will.topic, Date.now());
    if (typeof allowed === 'boolean') send(allowed);
    else void allowed.then(send);
  }

  flushMetrics(): void {
    this.metrics.flush({
      sessions: this.sessions.size,
      subscriptions: this.subscriptionCount(),
      retained: this.retained.size,
    });
  }

  /** Subscriptions of this broker's sessions, shared and exclusive ones included. */
  subscriptionCount(): number {
    return this.tree.size + this.exclusiveTree.size;
  }

  /** Closes every connection (MQTT 5 clients hear 0x8B, server shutting down) and stops timers. */
  async stop(): Promise<void> {
    const closed = [...this.connections].map((c) => c.shutDown());
    await Promise.all(closed);
    this.sys.stop();
    this.delayed.stop();
    await Promise.all([this.persistence.settled(), this.delayed.settled(), this.bindings.stop()]);
    for (const session of this.sessions.values()) session.discard();
    this.sessions.clear();
    this.bridge.stop();
    await this.peers?.stop();
    clearInterval(this.flushTimer);
    this.keepAlive.stop();
    this.flushMetrics();
  }
}

/** An exactly-once message stored with its packet id and not known to be routed. */
interface Unrouted {
  session: Session;
  packetId: number;
  publication: Publication;
}
