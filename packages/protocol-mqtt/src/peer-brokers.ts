import {
  ErrorCode,
  isRobustMQError,
  rendezvousOwner,
  RobustMQError,
  type BrokerCluster,
} from '@robustmq/core';
import { randomUUID } from 'node:crypto';
import type { MqttBroker, StandIn } from './broker.js';
import type { Publication } from './publication.js';
import { SharedGroupsElsewhere, type GroupElsewhere } from './shared-groups-elsewhere.js';
import type { LogEntry, SessionRecord } from './session-log.js';
import type { StoredSession } from './persistence.js';
import { ExclusiveAcrossBrokers } from './exclusive-across-brokers.js';
import { mayBeLive, PeerOutbox, type ForwardedBatch, type ForwardedMessage } from './peer-outbox.js';
import { loadMessage, storeMessage } from './stored-message.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The broker serving a session did not answer the request to let it go. */
class NotLetGo extends RobustMQError {
  constructor(readonly owner: number) {
    super(ErrorCode.Unavailable, `the session is served by broker ${owner}, which did not let go`);
  }
}

/** Resolves after what is queued to run now has run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The name MQTT brokers announce themselves by to the cluster. */
const MQTT = 'mqtt';

/** Batches remembered per sending broker, to tell one sent again from a new one. */
const REMEMBERED_BATCHES = 4096;

/**
 * How long a broker waits for another to give up a session (and, first, to answer what it
 * forwarded there) before asking again or refusing the client.
 */
const RELEASE_DEADLINE_MS = 5000;
const MIN_RELEASE_CALL_MS = 1000;

/** How long a CONNECT waits for a broker that is starting to join its cluster. */
const JOIN_WAIT_MS = 10_000;

/**
 * How long the sessions taken over from a gone broker are remembered, for the messages other
 * brokers had not got to it; and how long a broker waits to count that one gone itself.
 */
const ORPHANS_KEPT_MS = 60_000;
const NO_GROUPS: ReadonlySet<string> = new Set();
/** How often a broker looks whether it counts a broker gone that another already does. */
const GONE_POLL_MS = 50;
/**
 * How long a CONNECT keeps asking a live broker that does not answer to let its session go:
 * beyond the default broker session timeout (9 s) after which that broker counts as gone, and
 * with a last request, within MQTT.js's default connect timeout (30 s).
 */
const SILENT_OWNER_WAIT_MS = 15_000;
const SILENT_OWNER_RETRY_MS = 250;
/** How often a CONNECT asks for its session again when other brokers take it at the same time. */
const CLAIM_ATTEMPTS = 3;
/** How many session records a starting broker claims again at once. */
const CLAIMS_AT_ONCE = 100;

/**
 * What the MQTT brokers of one cluster (brokers on one storage) do together, so that clients may
 * connect to any of them:
 *
 * - every message published on one broker reaches the subscribers on all of them, and the retained
 *   store of each; a QoS 1 or 2 publish is acknowledged once the other brokers hold it as durably
 *   as this one does;
 * - a session is served by one broker at a time (its record names it). A client that connects to
 *   another broker takes its session along: the broker serving it closes the old connection
 *   (MQTT 5: 0x8E), stores what it holds and lets go, and the new broker reads the session back;
 * - the sessions of a broker that is gone are taken over by the live ones, so that their wills are
 *   published and their expiry runs.
 */
export class PeerBrokers {
  /** Whether this broker serves the session of a stored record (at start, and on changes). */
  readonly serves = (record: SessionRecord): boolean =>
    record.node === undefined || record.node === this.cluster.nodeId;
  /** Which other brokers have members of which shared groups. */
  readonly sharedGroups: SharedGroupsElsewhere;
  /** Which session in the cluster holds each `$exclusive/` filter. */
  readonly exclusive: ExclusiveAcrossBrokers;
  private adopting: Promise<void> = Promise.resolve();
  /** The live brokers as of the last change. */
  private lastLive: readonly number[] = [];
  /**
   * While this broker takes over the sessions of brokers that just left: which they were, and
   * when it is done. What is routed here meanwhile misses the sessions not yet here.
   */
  private takeover: { from: readonly number[]; done: Promise<void> } | null = null;
  private stopChanges: () => void = () => {};
  /** Set once {@link joinedYet} first finds this broker among the live ones; never unset. */
  private hasJoined = false;
  /** Whether the broker has brought back what its last run stored ({@link MqttBroker.recovered}). */
  private recovered = false;
  /** What waits for this broker to join the cluster ({@link forwardRouted}). */
  private readonly joinWaiters: Array<() => void> = [];
  /** Makes message ids unique across restarts of this broker. */
  private readonly boot = randomUUID().slice(0, 8);
  private sent = 0;
  private readonly outboxes = new Map<number, PeerOutbox>();
  /** By sending broker's run: the batches it sent lately, each held once routed. */
  private readonly receivedBatches = new Map<string, Map<number, Promise<object>>>();
  /**
   * By gone broker: the sessions taken over from it here, each with the ids of the messages its
   * log held, so that a message routed for that broker is given to them once.
   */
  private readonly takenFrom = new Map<number, Map<string, Set<string>>>();
  /**
   * QoS 1/2 messages routed here while a session is being claimed and has no stand-in yet (its
   * record is being read): the stand-in gets them once made. Such a message may reach the broker
   * letting the session go only after it did, so neither would have it. Null while no claim is.
   */
  private routedWhileClaiming: Publication[] | null = null;
  private claimsWithoutStandIn = 0;
  /**
   * Claims of sessions under way here, settled or not: a message routed for a gone broker waits
   * for them, since a session one of them takes from that broker counts as taken only once its
   * log has been read back.
   */
  private readonly claimsUnderWay = new Set<Promise<unknown>>();
  /** By client id: sessions being read back here for a CONNECT, settled once it is attached. */
  private readonly readingBack = new Map<string, Promise<void>>();

  constructor(
    private readonly broker: MqttBroker,
    private readonly cluster: BrokerCluster,
  ) {
    this.sharedGroups = new SharedGroupsElsewhere(broker.context.meta, cluster.nodeId, broker.logger);
    broker.shared.onGroupChange = (key, filter, exists) => {
      if (exists) this.sharedGroups.joined(key, filter);
      else this.sharedGroups.left(key);
    };
    this.exclusive = new ExclusiveAcrossBrokers(
      broker.context.meta,
      cluster,
      (filter, clientId) => broker.exclusive.get(filter)?.clientId === clientId,
      broker.logger,
    );
    // Not before the sessions of the last run are back: a message routed to none of them would
    // be answered as held, and a session not yet here could not be let go of.
    void broker.recovered.then(() => (this.recovered = true));
    cluster.handle('mqtt.publish', (body) =>
      broker.recovered.then(() => this.receivedOnce(body as ForwardedBatch)),
    );
    cluster.handle('mqtt.release', (body) => this.releaseOnceBack((body as { c: string }).c));
    cluster.handle('mqtt.retained.delete', (body) => {
      broker.retained.delete((body as { t: string }).t);
      return Promise.resolve({});
    });
  }

  /** Follows the other brokers' shared groups, then takes part in the cluster's changes. */
  async start(): Promise<void> {
    await this.sharedGroups.start();
    this.cluster.announce(MQTT, {});
    this.stopChanges = this.cluster.onChange(() => {
      this.joinedYet();
      const live = this.cluster.brokers(MQTT);
      const left = this.lastLive.filter((id) => !live.includes(id));
      this.lastLive = live;
      this.adopting = this.adopting.then(() => this.adoptOrphans());
      if (left.length > 0) {
        const takeover = { from: [...(this.takeover?.from ?? []), ...left], done: this.adopting };
        this.takeover = takeover;
        void takeover.done.then(() => {
          if (this.takeover === takeover) this.takeover = null;
        });
      }
    });
  }

  async stop(): Promise<void> {
    this.stopChanges();
    this.sharedGroups.stop();
    await Promise.all([this.adopting, this.sharedGroups.settled()]);
  }

  /** A new message id, unique in the cluster ({@link Publication.uid}). */
  nextUid(): string {
    return `${this.cluster.nodeId}.${this.boot}.${(this.sent++).toString(36)}`;
  }

  /** The live broker to serve the next message of a shared group with no member here. */
  pickFor(group: GroupElsewhere): number | null {
    return group.pick(this.cluster.peers(MQTT));
  }

  /** Whether there are other brokers to share with. */
  get active(): boolean {
    return this.cluster.peers(MQTT).length > 0;
  }

  /**
   * Whether a message routed here may have to go to other brokers: there are some, or this broker
   * has not joined yet and cannot tell.
   */
  get mayForward(): boolean {
    return !this.joinedYet() || this.active;
  }

  /**
   * Whether this broker has joined the cluster (seen which brokers are live) since it started.
   * Before, it sees no peers: a message routed then (an exactly-once message its last run left
   * unrouted, a will or a delayed message come due, a message of another protocol) would miss
   * every other broker's subscribers.
   */
  private joinedYet(): boolean {
    if (!this.hasJoined && this.cluster.brokers(MQTT).includes(this.cluster.nodeId)) {
      this.hasJoined = true;
      for (const joined of this.joinWaiters.splice(0)) joined();
    }
    return this.hasJoined;
  }

  /** Resolves once this broker has joined the cluster, or after `ms`. */
  private joinedWithin(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.joinWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * {@link forward}, once this broker has joined the cluster; `sharedGroups` is asked then, as
   * which broker serves a shared group depends on which are live.
   */
  forwardRouted(
    publication: Publication,
    originProtocol: string,
    sharedGroups: () => ReadonlyMap<number, string[]> | null,
  ): Promise<void> | null {
    const send = () => (this.active ? this.forward(publication, originProtocol, sharedGroups()) : null);
    if (this.joinedYet()) return send();
    // Its bytes may be a connection's read buffer, reused by the time the cluster is known.
    publication.detach();
    return new Promise<void>((resolve) => this.joinWaiters.push(resolve)).then(() => send() ?? undefined);
  }

  /**
   * Sends a routed publication to every other broker. Resolves once each has it (a QoS 1 or 2
   * message durably, where its sessions are persistent); null for QoS 0, which nobody waits for.
   */
  forward(
    publication: Publication,
    originProtocol: string,
    sharedGroups: ReadonlyMap<number, string[]> | null,
  ): Promise<void> | null {
    const body: ForwardedMessage = {
      m: storeMessage(publication, false),
      p: publication.payload,
      o: originProtocol,
    };
    const sends: Array<Promise<void>> = [];
    for (const peer of this.cluster.peers(MQTT)) {
      const groups = sharedGroups?.get(peer);
      const sent = this.outboxFor(peer).add(groups ? { ...body, g: groups } : body, publication.qos);
      if (sent !== null) sends.push(sent);
    }
    if (publication.qos === 0 || sends.length === 0) return null;
    return Promise.all(sends).then(() => undefined);
  }

  private outboxFor(peer: number): PeerOutbox {
    let outbox = this.outboxes.get(peer);
    if (!outbox) {
      outbox = new PeerOutbox(
        peer,
        this.cluster,
        this.broker.metrics,
        this.broker.logger,
        `${this.cluster.nodeId}.${this.boot}`,
        () => mayBeLive(this.cluster, peer, MQTT),
        (messages) => this.orphaned(peer, messages),
      );
      this.outboxes.set(peer, outbox);
    }
    return outbox;
  }

  /**
   * A batch another broker sent, taken once: one sent again (its answer was lost) is answered
   * when the first is held, without routing its messages twice.
   */
  private receivedOnce(body: ForwardedBatch): Promise<object> {
    let seen = this.receivedBatches.get(body.c);
    if (!seen) {
      seen = new Map();
      this.receivedBatches.set(body.c, seen);
    }
    let held = seen.get(body.s);
    if (!held) {
      held = this.received(body);
      seen.set(body.s, held);
      // A failure is not remembered: the batch is taken afresh when sent again.
      held.catch(() => seen.delete(body.s));
      if (seen.size > REMEMBERED_BATCHES) seen.delete(seen.keys().next().value!);
    }
    return held;
  }

  /** Messages another broker routed, in the order it routed them; answered once all are held. */
  private async received(body: ForwardedBatch): Promise<object> {
    const held: Array<Promise<void>> = [];
    for (const message of body.b) {
      const publication = loadMessage(message.m);
      publication.payload = Buffer.from(message.p.buffer, message.p.byteOffset, message.p.byteLength);
      const writes =
        message.f === undefined
          ? this.broker.receiveForwarded(publication, message.o, new Set(message.g))
          : (await this.receiveOrphaned(message.f, publication, new Set(message.g))).writes;
      if (writes !== null) held.push(writes);
    }
    await Promise.all(held);
    return {};
  }

  /**
   * Messages routed for broker `gone` that it did not answer before it went: given to the sessions
   * taken over from it, here and on the other live brokers. Resolves once they hold them.
   */
  private async orphaned(gone: number, messages: ForwardedMessage[]): Promise<void> {
    const held: Array<Promise<void>> = [];
    for (const message of messages) {
      const qos = message.m.qos;
      for (const peer of this.cluster.peers(MQTT)) {
        const sent = this.outboxFor(peer).add({ ...message, f: gone }, qos);
        if (sent !== null) held.push(sent);
      }
    }
    for (const message of messages) {
      const publication = loadMessage(message.m);
      publication.payload = Buffer.from(message.p.buffer, message.p.byteOffset, message.p.byteLength);
      const { writes } = await this.receiveOrphaned(gone, publication, new Set(message.g));
      if (writes !== null) held.push(writes);
    }
    await Promise.all(held);
  }

  /**
   * Gives a message routed for broker `gone` to the sessions taken over from it here, but to none
   * that had it. Waits first until this broker, too, counts it gone and has taken over its share;
   * `writes` settles once the sessions hold it.
   */
  private async receiveOrphaned(
    gone: number,
    publication: Publication,
    sharedGroups: ReadonlySet<string>,
  ): Promise<{ writes: Promise<void> | null }> {
    if (!(await this.countedGone(gone))) return { writes: null };
    return { writes: this.giveTaken(gone, publication, sharedGroups) };
  }

  /**
   * Gives a message to the sessions taken over here from broker `gone` that do not have it
   * (by message id, from their logs and from what they were given since).
   */
  private giveTaken(
    gone: number,
    publication: Publication,
    sharedGroups: ReadonlySet<string>,
  ): Promise<void> | null {
    const taken = this.takenFrom.get(gone);
    if (taken === undefined) return null;
    const uid = publication.uid;
    return this.broker.receiveOrphaned(publication, sharedGroups, (session) => {
      const had = taken.get(session.clientId);
      if (had === undefined) return false;
      return uid === null || !(had.has(uid) || session.recentUids.includes(uid));
    });
  }

  /**
   * A message routed here while this broker takes over the sessions of brokers that just left:
   * once it has, it is given to those sessions too (to none that had it; shared groups had it
   * from a live member). Resolves once they hold it; null when no takeover is under way.
   */
  afterTakeover(publication: Publication): Promise<void> | null {
    const takeover = this.takeover;
    if (takeover === null) return null;
    return takeover.done.then(async () => {
      const held: Array<Promise<void>> = [];
      for (const gone of takeover.from) {
        const writes = this.giveTaken(gone, publication, NO_GROUPS);
        if (writes !== null) held.push(writes);
      }
      await Promise.all(held);
    });
  }

  /**
   * Resolves true once this broker counts `broker` gone and has taken its share of that broker's
   * sessions over; false if it still counts it live after {@link ORPHANS_KEPT_MS}.
   */
  private async countedGone(broker: number): Promise<boolean> {
    const deadline = Date.now() + ORPHANS_KEPT_MS;
    while (this.cluster.brokers(MQTT).includes(broker)) {
      if (Date.now() > deadline) return false;
      await sleep(GONE_POLL_MS);
    }
    // The change listener queues the takeover; it may run after this broker sees the change.
    await nextTurn();
    await this.adopting;
    await Promise.all(this.claimsUnderWay);
    return true;
  }

  /** Tells the other brokers a retained message was deleted by an operator. */
  retainedDeleted(topic: string): Promise<void> {
    return Promise.all(
      this.cluster.peers(MQTT).map((peer) =>
        this.cluster.call(peer, 'mqtt.retained.delete', { t: topic }).catch((error: unknown) => {
          this.broker.logger.warn(
            { err: error, broker: peer, topic },
            'retained deletion not sent to another broker',
          );
        }),
      ),
    ).then(() => undefined);
  }

  /**
   * Before a client's session is attached here: the broker that serves it lets it go, and its
   * stored state is read back here. Rejects `UNAVAILABLE` when the broker serving it is live but
   * did not let go.
   *
   * Until the session is back here, a stand-in subscribed as its record says keeps what is
   * published for it: a message that reached the other broker before it let go is in the log read
   * back, and one that reached this broker is with the stand-in. What both have (by message id,
   * from the log and from the ids the other broker reports) is given to the session once.
   */
  claim(clientId: string): Promise<void> {
    const claiming = this.claimSession(clientId);
    const settled = claiming.catch(() => {});
    this.claimsUnderWay.add(settled);
    void settled.then(() => this.claimsUnderWay.delete(settled));
    return claiming;
  }

  private async claimSession(clientId: string): Promise<void> {
    // A client connecting to a broker that is still joining waits for it rather than being
    // refused: most clients take a refused CONNACK as final (MQTT.js does not reconnect).
    if (!this.joinedYet()) await this.joinedWithin(JOIN_WAIT_MS);
    if (!this.cluster.brokers(MQTT).includes(this.cluster.nodeId)) {
      // Still joining, or cut off from the meta service: it cannot tell who serves the session.
      throw new RobustMQError(ErrorCode.Unavailable, 'this broker is not serving MQTT in its cluster yet');
    }
    // What is routed here from now on is kept for the session by its stand-in; what was routed
    // before and forwarded to the broker serving it is to be there when that broker lets it go.
    const forwarded = new Map([...this.outboxes].map(([peer, outbox]) => [peer, outbox.answeredSoFar()]));
    const routed = (this.routedWhileClaiming ??= []);
    const from = routed.length;
    this.claimsWithoutStandIn++;
    let standIn: StandIn | null = null;
    try {
      const found = await this.broker.persistence.loadRecord(clientId);
      if (found !== null && !this.serves(found.record) && !this.broker.sessions.has(clientId)) {
        standIn = this.broker.standIn(clientId, found.record);
        this.broker.keepFor(standIn, routed.slice(from));
      }
    } finally {
      if (--this.claimsWithoutStandIn === 0) this.routedWhileClaiming = null;
    }
    // Refusing the client would end most clients for good (MQTT.js does not reconnect after a
    // refused CONNACK), so a claim that cannot be settled at once is tried again for a while.
    const giveUpAt = Date.now() + SILENT_OWNER_WAIT_MS;
    let conflicts = 0;
    try {
      for (;;) {
        try {
          await this.takeFromServing(clientId, standIn, forwarded);
          return;
        } catch (error) {
          if (error instanceof NotLetGo && Date.now() < giveUpAt) {
            // Killed, say: it answers once started again, or its sessions are taken over once
            // it is counted gone.
            if (this.cluster.peers(MQTT).includes(error.owner)) await sleep(SILENT_OWNER_RETRY_MS);
            continue;
          }
          // Another broker took the session at the same time (for a CONNECT its client gave up
          // on, say): asked again, that one lets go.
          if (!isRobustMQError(error, ErrorCode.Conflict)) throw error;
          if (++conflicts >= CLAIM_ATTEMPTS) {
            throw new RobustMQError(ErrorCode.Unavailable, 'other brokers kept taking the session over');
          }
        }
      }
    } finally {
      standIn?.remove();
      standIn?.finish();
    }
  }

  /**
   * Asks every other broker to let the session of `clientId` go, then reads it back here unless
   * it is here already or there is none. Rejects `CONFLICT` when another broker took it meanwhile.
   */
  private async takeFromServing(
    clientId: string,
    standIn: StandIn | null,
    forwarded: ReadonlyMap<number, Promise<void>>,
  ): Promise<void> {
    // Asked even with no other broker live: the record may name one that is gone.
    const peers = this.cluster.peers(MQTT);
    const answers = await Promise.all(
      peers.map(async (peer) => {
        const deadline = Date.now() + RELEASE_DEADLINE_MS;
        // A message still on its way there (sent again while it restarts, say) would otherwise
        // reach neither broker's copy of the session.
        await this.answeredOrLate(forwarded.get(peer), deadline);
        const deadlineMs = Math.max(deadline - Date.now(), MIN_RELEASE_CALL_MS);
        return this.cluster.call<{ u: string[] }>(peer, 'mqtt.release', { c: clientId }, { deadlineMs }).then(
          (answer) => answer.u,
          (error: unknown) => {
            this.broker.logger.warn(
              { err: error, broker: peer, clientId },
              'another broker did not release a session',
            );
            return null;
          },
        );
      }),
    );
    // From here the session comes here: another broker asking for it meanwhile is answered once
    // its client is attached (a CONNECT attaches right after its claim), so that it takes the
    // connection over with the session.
    const taking = this.readBack(clientId, peers, answers, standIn);
    const attached = taking.then(nextTurn, nextTurn);
    this.readingBack.set(clientId, attached);
    void attached.then(() => {
      if (this.readingBack.get(clientId) === attached) this.readingBack.delete(clientId);
    });
    return taking;
  }

  /** Resolves once `answered` has, or at `deadline`. */
  private answeredOrLate(answered: Promise<void> | undefined, deadline: number): Promise<void> {
    if (answered === undefined) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - Date.now())));
    return Promise.race([answered, late]).finally(() => clearTimeout(timer));
  }

  /** {@link takeFromServing} once the other brokers have answered. */
  private async readBack(
    clientId: string,
    peers: readonly number[],
    answers: ReadonlyArray<string[] | null>,
    standIn: StandIn | null,
  ): Promise<void> {
    if (this.broker.sessions.has(clientId)) return;
    const stored = await this.broker.persistence.loadRecord(clientId);
    if (stored === null) return;
    if (this.serves(stored.record)) {
      // Named here but not held: its log could not be read at start, or the broker it was let go
      // to never took it. It is read back, not started afresh.
      await this.adopt(stored.record, stored.revision, standIn);
      return;
    }
    const owner = stored.record.node!;
    const at = peers.indexOf(owner);
    if (at >= 0 && answers[at] === null) {
      throw new NotLetGo(owner);
    }
    // A record naming a broker that is not live: the session is taken from one that is gone.
    await this.adopt(stored.record, stored.revision, standIn, answers[at] ?? [], at < 0);
  }

  /**
   * Of the sessions this broker's last run served, those it still serves: each record is claimed
   * again (compare-and-set), since a broker that counted this one gone may be taking them over as
   * it starts, and only one of the two may bring a session back.
   */
  async stillServed(stored: readonly StoredSession[]): Promise<StoredSession[]> {
    const kept: StoredSession[] = [];
    for (let from = 0; from < stored.length; from += CLAIMS_AT_ONCE) {
      const claimed = await Promise.all(
        stored.slice(from, from + CLAIMS_AT_ONCE).map((one) => this.claimAgain(one)),
      );
      for (const one of claimed) if (one !== null) kept.push(one);
    }
    return kept;
  }

  private async claimAgain(stored: StoredSession): Promise<StoredSession | null> {
    const record: SessionRecord = { ...stored.record, node: this.cluster.nodeId };
    try {
      await stored.log.claimRecord(record, stored.revision);
      return { ...stored, record };
    } catch (error) {
      this.broker.persistence.forget(stored.log);
      if (isRobustMQError(error, ErrorCode.Conflict)) {
        this.broker.logger.info(
          { clientId: record.clientId },
          'a session of the last run was taken over by another broker while this one started',
        );
      } else {
        // Its record still names this broker: the session is read back when its client connects.
        this.broker.logger.error(
          { err: error, clientId: record.clientId },
          'a session of the last run was not claimed again',
        );
      }
      return null;
    }
  }

  /** A QoS 1/2 message was routed here: kept for the stand-ins of the claims under way. */
  routedHere(publication: Publication): void {
    if (this.routedWhileClaiming === null || publication.qos === 0) return;
    publication.detach();
    this.routedWhileClaiming.push(publication);
  }

  /**
   * {@link release}, once the session is back here if this broker is still bringing back those of
   * its last run and the session is one of them. Others are answered at once: every connect in the
   * cluster asks every broker.
   */
  private async releaseOnceBack(clientId: string): Promise<{ u: string[] }> {
    await this.readingBack.get(clientId);
    if (!this.recovered) {
      const found = await this.broker.persistence.loadRecord(clientId);
      if (found !== null && this.serves(found.record)) await this.broker.recovered;
    }
    return this.release(clientId);
  }

  /**
   * Another broker takes the session of `clientId` over: its connection here closes as in a
   * takeover, and the session stops being served here once what it holds is stored. Answers the
   * ids of the last messages it was given.
   */
  private async release(clientId: string): Promise<{ u: string[] }> {
    const session = this.broker.sessions.get(clientId);
    if (session === undefined) return { u: [] };
    session.connection?.takeOver();
    if (!session.ended) await this.broker.handOff(session);
    return { u: session.recentUids };
  }

  /**
   * Takes the sessions and delayed messages of brokers no longer live over, each by the live
   * broker it hashes to.
   */
  private async adoptOrphans(): Promise<void> {
    const live = this.cluster.brokers(MQTT);
    if (!live.includes(this.cluster.nodeId)) return;
    const mine = (key: string) => rendezvousOwner(key, live) === this.cluster.nodeId;
    try {
      const orphans = await this.broker.persistence.listRecords(
        (record) =>
          record.node !== undefined && !live.includes(record.node) && mine(`mqtt-session:${record.clientId}`),
      );
      for (const { record, revision } of orphans) {
        if (this.broker.sessions.has(record.clientId)) continue;
        try {
          await this.adopt(record, revision, null, [], true);
        } catch (error) {
          this.broker.logger.warn(
            { err: error, clientId: record.clientId },
            'session of a broker that left not taken over',
          );
        }
      }
      await this.broker.delayed.adopt((node, key) => !live.includes(node) && mine(key));
    } catch (error) {
      this.broker.logger.error({ err: error }, 'sessions of a broker that left were not taken over');
    }
  }

  /** Notes a session taken over from gone broker `from`, with the ids of the messages it holds. */
  private rememberTaken(from: number, clientId: string, entries: readonly LogEntry[]): void {
    let taken = this.takenFrom.get(from);
    if (taken === undefined) {
      const created = new Map<string, Set<string>>();
      taken = created;
      this.takenFrom.set(from, created);
      setTimeout(() => {
        if (this.takenFrom.get(from) === created) this.takenFrom.delete(from);
      }, ORPHANS_KEPT_MS).unref();
    }
    const had = new Set<string>();
    for (const entry of entries) if (entry.t === 'm' && entry.m.uid !== undefined) had.add(entry.m.uid);
    taken.set(clientId, had);
  }

  /**
   * Makes this broker the one serving a stored session (compare-and-set on its record, so only one
   * broker wins; the others get `CONFLICT`) and brings it back to life here.
   */
  private async adopt(
    record: SessionRecord,
    revision: number,
    standIn: StandIn | null = null,
    had: readonly string[] = [],
    fromGone = false,
  ): Promise<void> {
    const log = this.broker.persistence.logFor(record.clientId);
    const claimed: SessionRecord = { ...record, node: this.cluster.nodeId };
    await log.claimRecord(claimed, revision);
    const entries = await log.read();
    if (this.broker.sessions.has(record.clientId)) return;
    const [session] = this.broker.restoreSessions([{ record: claimed, revision, log, entries }], Date.now());
    if (fromGone && record.node !== undefined) this.rememberTaken(record.node, record.clientId, entries);
    if (standIn !== null) {
      const known = new Set(had);
      for (const entry of entries) if (entry.t === 'm' && entry.m.uid !== undefined) known.add(entry.m.uid);
      await this.broker.deliverKept(session!, standIn, known);
    }
    this.broker.logger.info(
      { clientId: record.clientId, from: record.node },
      record.node === this.cluster.nodeId
        ? 'session read back from its log'
        : 'session taken over from another broker',
    );
  }
}
