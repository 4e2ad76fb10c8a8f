import { hostname } from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import {
  ErrorCode,
  RobustMQError,
  type BrokerCluster,
  type Logger,
  type MetaStore,
  type PeerCallOptions,
  type PeerHandler,
} from '@robustmq/core';
import { connectRpc, type RpcClient, type RpcServer } from '@robustmq/rpc';

/** What a broker records of itself under `/brokers/<node id>`, rewritten every heartbeat. */
export interface BrokerRecord {
  nodeId: number;
  /** Where other brokers call it. */
  rpc: { host: string; port: number };
  /** The storage it serves (the storage engine's `location`): brokers form a cluster over one. */
  storage: string;
  /** The writer's clock at the heartbeat, ms since the epoch: only a hint for brokers that start. */
  beatAt: number;
  /** What its protocols announced, by name. */
  announced: Record<string, unknown>;
}

export const BROKERS_PREFIX = '/brokers/';

/** How a broker that joins tells the others at once, rather than at their next heartbeat. */
const JOINED_METHOD = 'cluster.joined';

const DEFAULT_DEADLINE_MS = 5000;
const WILDCARDS = new Set(['0.0.0.0', '::', '']);

export interface BrokerClusterOptions {
  meta: MetaStore;
  nodeId: number;
  /** The storage engine's `location`: only brokers on the same storage are one cluster. */
  storage: string;
  /** This node's internal RPC server, where peers call the handlers plugins register. */
  rpc: RpcServer;
  /** The address the RPC server is bound to; peers are given this host's name for a wildcard. */
  rpcHost: string;
  /** TLS of the connections to the other brokers (the `[rpc]` TLS settings); unset, plain TCP. */
  tls?: ConnectionOptions;
  heartbeatMs: number;
  /** A broker whose record has not changed for this long is gone. */
  sessionTimeoutMs: number;
  logger: Logger;
  now?: () => number;
}

interface Peer {
  record: BrokerRecord;
  modRevision: number;
  /** Local time the record last changed, as this broker saw it. */
  changedAt: number;
  /** Local time this broker took the record, from a listing or from the peer itself. */
  takenAt: number;
}

/**
 * The brokers on one storage, kept by heartbeats in the meta store: each broker rewrites its
 * record every `heartbeatMs`, and a broker whose record has not changed within the session
 * timeout, judged by this broker's own clock over the time it could read the store, is gone. A
 * clean stop removes the record, so peers take over at once. A broker that cannot reach the meta
 * service while peers exist steps back (its live list is empty): the peers will have taken over
 * what it owned. A broker that starts tells the brokers it finds that it is there, and counts as
 * joined (claims anything) only once each has answered or a heartbeat interval has passed, so
 * that nothing they route once its clients are served misses it.
 */
export class ServerBrokerCluster implements BrokerCluster {
  readonly nodeId: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly known = new Map<number, Peer>();
  private readonly clients = new Map<number, { client: RpcClient; host: string; port: number }>();
  private readonly announcements = new Map<string, unknown>();
  private live: readonly number[];
  /** What the listeners were last told of: live brokers and what each announced. */
  private seen = '';
  private lastBeat = 0;
  /** This broker's record as last written, with its revision: what it tells joining peers of. */
  private written: { value: Buffer; modRevision: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  /** Set after the first heartbeat: until then this broker knows nothing of the others. */
  private joined = false;
  private stopped = false;
  private readonly changeListeners = new Set<() => void>();

  constructor(private readonly options: BrokerClusterOptions) {
    this.nodeId = options.nodeId;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.live = [options.nodeId];
  }

  /** Registers this broker and keeps its record fresh until {@link stop}. */
  async start(): Promise<void> {
    this.started = true;
    this.options.rpc.handle(JOINED_METHOD, (body: unknown) => {
      this.met(body as { value: Uint8Array; modRevision: number });
      return Promise.resolve({});
    });
    await this.beat();
    await this.greet();
    this.joined = true;
    this.seen = this.view();
    this.schedule();
    // Once told, even with no change: what brokers gone before this one started owned is
    // still to take over.
    this.notify();
  }

  brokers(announcing?: string): readonly number[] {
    // Before its first heartbeat this broker cannot tell who is live: it claims nothing.
    if (!this.joined) return [];
    if (announcing === undefined) return this.live;
    return this.live.filter((id) => this.announced(id, announcing) !== undefined);
  }

  peers(announcing?: string): readonly number[] {
    return this.brokers(announcing).filter((id) => id !== this.nodeId);
  }

  announce(name: string, value: unknown): void {
    if (value === undefined) this.announcements.delete(name);
    else this.announcements.set(name, value);
    // Peers learn of it at this broker's next heartbeat; this broker's own view changes now.
    this.update();
  }

  announced(nodeId: number, name: string): unknown {
    if (nodeId === this.nodeId) return this.announcements.get(name);
    return this.known.get(nodeId)?.record.announced[name];
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  handle(method: string, handler: PeerHandler): void {
    this.options.rpc.handle(method, (body: unknown) => handler(body));
  }

  call<T>(nodeId: number, method: string, body: unknown, options: PeerCallOptions = {}): Promise<T> {
    const client = this.clientFor(nodeId);
    if (client === null) {
      return Promise.reject(
        new RobustMQError(ErrorCode.Unavailable, `broker ${nodeId} is not a live member of this cluster`),
      );
    }
    return client.call<T>(method, body, { deadlineMs: options.deadlineMs ?? DEFAULT_DEADLINE_MS });
  }

  /** Stops the heartbeats, closes the links to peers and removes this broker's record. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const closing = [...this.clients.values()].map(({ client }) => client.close());
    this.clients.clear();
    await Promise.allSettled(closing);
    if (!this.started) return;
    try {
      await this.options.meta.delete(this.key(this.nodeId));
    } catch (error) {
      this.logger.warn(
        { err: error },
        'could not remove this broker from the cluster; peers will time it out',
      );
    }
  }

  private clientFor(nodeId: number): RpcClient | null {
    const peer = this.known.get(nodeId);
    if (peer === undefined || nodeId === this.nodeId || !this.live.includes(nodeId)) return null;
    const { host, port } = peer.record.rpc;
    const existing = this.clients.get(nodeId);
    if (existing && existing.host === host && existing.port === port) return existing.client;
    if (existing) void existing.client.close();
    const client = connectRpc({
      host,
      port,
      connectWaitMs: this.options.sessionTimeoutMs,
      ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
      logger: this.logger.child({ component: `broker-${nodeId}` }),
    });
    this.clients.set(nodeId, { client, host, port });
    return client;
  }

  private key(nodeId: number): string {
    return `${BROKERS_PREFIX}${nodeId}`;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      // beat() logs its own failures and never rejects.
      void this.beat().finally(() => this.schedule());
    }, this.options.heartbeatMs);
    this.timer.unref();
  }

  /** Rewrites this broker's record, then reads every broker's and works out who is live. */
  private async beat(): Promise<void> {
    const { meta, nodeId, rpc } = this.options;
    try {
      const host = WILDCARDS.has(this.options.rpcHost) ? hostname() : this.options.rpcHost;
      const record: BrokerRecord = {
        nodeId,
        rpc: { host, port: rpc.port },
        storage: this.options.storage,
        beatAt: this.now(),
        announced: Object.fromEntries(this.announcements),
      };
      const value = Buffer.from(JSON.stringify(record));
      const modRevision = await meta.put(this.key(nodeId), value);
      this.written = { value, modRevision };
      this.forgiveBlindTime(this.now());
      this.lastBeat = this.now();
      const listedAt = this.now();
      const entries = await meta.list(BROKERS_PREFIX);
      this.observe(entries, listedAt);
    } catch (error) {
      this.logger.warn({ err: error }, 'broker heartbeat to the meta service failed');
    }
    this.update();
  }

  /**
   * After heartbeats that failed (the meta service was down or out of reach), the peers' silence
   * is counted only over the time this broker could see the store: the peers were most likely cut
   * off too, and may write their records again a little after this one does. Counting the blind
   * time would have each broker take the other for gone (and drop what it routes there) as soon
   * as it reconnected.
   */
  private forgiveBlindTime(now: number): void {
    if (this.lastBeat === 0) return;
    const gap = now - this.lastBeat;
    if (gap <= 2 * this.options.heartbeatMs) return;
    const blind = gap - this.options.heartbeatMs;
    for (const peer of this.known.values()) peer.changedAt = Math.min(now, peer.changedAt + blind);
  }

  /**
   * Tells every live peer found at the first heartbeat that this broker is there, waiting for
   * each at most a heartbeat interval: one that does not answer learns of it at its own next one.
   */
  private async greet(): Promise<void> {
    const written = this.written;
    if (written === null) return;
    const deadlineMs = Math.min(this.options.heartbeatMs, DEFAULT_DEADLINE_MS);
    // Not `peers()`: that is empty until this broker has joined.
    await Promise.all(
      this.live
        .filter((id) => id !== this.nodeId)
        .map((peer) =>
          this.call(peer, JOINED_METHOD, written, { deadlineMs }).catch((error: unknown) => {
            this.logger.debug({ err: error, broker: peer }, 'a broker was not told that this one joined');
          }),
        ),
    );
  }

  /** A peer that joined told this broker its record: it counts as live from now. */
  private met(written: { value: Uint8Array; modRevision: number }): void {
    if (this.stopped || !Number.isSafeInteger(written.modRevision)) return;
    const record = parseRecord(written.value);
    if (record === null) return;
    const entry = { key: this.key(record.nodeId), value: written.value, modRevision: written.modRevision };
    if (this.take(entry) !== null) this.update();
  }

  /** Takes one broker's record; the id of a peer on this storage, else null. */
  private take(entry: { key: string; value: Uint8Array; modRevision: number }): number | null {
    const record = parseRecord(entry.value);
    if (!record || entry.key !== this.key(record.nodeId) || record.nodeId === this.nodeId) return null;
    if (record.storage !== this.options.storage) return null;
    const known = this.known.get(record.nodeId);
    // Revisions only grow: an older record (a greeting overtaken by a heartbeat) changes nothing.
    if (known !== undefined && known.modRevision >= entry.modRevision) return record.nodeId;
    const now = this.now();
    // A record met for the first time counts from its own heartbeat time, within one timeout.
    const changedAt =
      known === undefined ? Math.min(now, Math.max(record.beatAt, now - this.options.sessionTimeoutMs)) : now;
    this.known.set(record.nodeId, { record, modRevision: entry.modRevision, changedAt, takenAt: now });
    return record.nodeId;
  }

  /** Takes the records listed from `listedAt` on; one missing is gone, unless told of since. */
  private observe(
    entries: readonly { key: string; value: Uint8Array; modRevision: number }[],
    listedAt: number,
  ): void {
    const now = this.now();
    const seen = new Set<number>();
    for (const entry of entries) {
      const id = this.take(entry);
      if (id !== null) seen.add(id);
    }
    for (const [id, peer] of this.known) if (!seen.has(id) && peer.takenAt < listedAt) this.known.delete(id);
    for (const [id, peer] of this.known) {
      // Records of brokers gone for many timeouts are removed, by revision so none comes back.
      if (now - peer.changedAt < 10 * this.options.sessionTimeoutMs) continue;
      this.known.delete(id);
      this.options.meta.delete(this.key(id), { ifRevision: peer.modRevision }).catch(() => {
        // Another broker removed it first, or it came back: either way nothing to do.
      });
    }
  }

  private update(): void {
    const now = this.now();
    const alive = [...this.known.values()]
      .filter((p) => now - p.changedAt < this.options.sessionTimeoutMs)
      .map((p) => p.record.nodeId);
    const cutOff = this.known.size > 0 && now - this.lastBeat >= this.options.sessionTimeoutMs;
    const live = (cutOff ? alive : [...alive, this.nodeId]).sort((a, b) => a - b);
    if (live.length !== this.live.length || live.some((id, i) => id !== this.live[i])) {
      this.logger.info({ brokers: live, was: this.live }, 'brokers of the cluster changed');
    }
    this.live = live;
    for (const [id, { client }] of this.clients) {
      if (live.includes(id)) continue;
      this.clients.delete(id);
      void client.close();
    }
    // Nobody is told before this broker has seen the others: what it would conclude alone
    // (that every other broker is gone) is wrong.
    if (!this.joined) return;
    const seen = this.view();
    if (seen === this.seen) return;
    this.seen = seen;
    this.notify();
  }

  /** The live brokers with the names each announced, to tell a change from none. */
  private view(): string {
    return JSON.stringify(
      this.live.map((id) => [
        id,
        id === this.nodeId
          ? [...this.announcements.keys()]
          : Object.keys(this.known.get(id)!.record.announced),
      ]),
    );
  }

  private notify(): void {
    for (const listener of this.changeListeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error }, 'a listener of broker changes failed');
      }
    }
  }
}

function parseRecord(value: Uint8Array): BrokerRecord | null {
  try {
    const record = JSON.parse(Buffer.from(value).toString('utf8')) as Partial<BrokerRecord>;
    if (
      typeof record.nodeId === 'number' &&
      typeof record.beatAt === 'number' &&
      typeof record.storage === 'string' &&
      typeof record.rpc?.host === 'string' &&
      typeof record.rpc.port === 'number' &&
      typeof record.announced === 'object' &&
      record.announced !== null
    ) {
      return record as BrokerRecord;
    }
  } catch {
    // Not a record this version understands: left out of the view.
  }
  return null;
}
