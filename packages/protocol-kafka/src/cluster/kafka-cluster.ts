import { hostname } from 'node:os';
import {
  rendezvousOwner as ownerOf,
  silentLogger,
  type ListenerAddress,
  type Logger,
  type MetaStore,
} from '@robustmq/core';

/** Where clients reach a broker on one listener. */
export interface BrokerEndpoint {
  host: string;
  port: number;
}

/** What a broker records of itself under `/kafka/brokers/<node id>`, rewritten every heartbeat. */
export interface BrokerRecord {
  nodeId: number;
  /** By listener name (`tcp`, `tls`). */
  listeners: Record<string, BrokerEndpoint>;
  /** The storage it serves (the storage engine's `location`): brokers form a cluster over one. */
  storage: string;
  /** The writer's clock at the heartbeat, ms since the epoch: only a hint for brokers that start. */
  beatAt: number;
}

export const BROKERS_PREFIX = '/kafka/brokers/';

export interface KafkaClusterOptions {
  meta: MetaStore;
  nodeId: number;
  /**
   * Where this broker's shards live, when other nodes reach them too (a journal node). Brokers on
   * different storage, or on storage of their own, each serve their data alone.
   */
  storage: string | undefined;
  /** How often this broker rewrites its record (Kafka's `broker.heartbeat.interval.ms`). */
  heartbeatMs: number;
  /** A broker whose record has not changed for this long is gone (`broker.session.timeout.ms`). */
  sessionTimeoutMs: number;
  /** The host other brokers' clients are sent to, when set (`advertised_host`). */
  advertisedHost?: string;
  /** The port other brokers' clients are sent to on the `tcp` listener, when set. */
  advertisedPort?: number;
  logger?: Logger;
  now?: () => number;
}

interface Peer {
  record: BrokerRecord;
  modRevision: number;
  /** Local time the record last changed, as this broker saw it. */
  changedAt: number;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * The Kafka brokers of the cluster as this broker sees them. Brokers are stateless, but a consumer
 * group needs one coordinator and a partition one leader (its idempotent producers' sequences are
 * checked in one place), so every broker picks them the same way from the live brokers: those
 * whose record in the meta store changed within the session timeout, judged by this broker's own
 * clock. Until {@link start}, and always on storage no other broker reaches (the partitions'
 * data would not follow a leader that moves), this broker is the only one.
 */
export class KafkaCluster {
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly peers = new Map<number, Peer>();
  private listeners: Record<string, BrokerEndpoint> | null = null;
  /** Live broker ids, ascending; this broker's own id while it is in the cluster. */
  private live: readonly number[];
  private lastBeat = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly changeListeners = new Set<() => void>();

  constructor(private readonly options: KafkaClusterOptions) {
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.live = [options.nodeId];
  }

  /** Registers this broker with its bound listeners and keeps its record fresh until {@link stop}. */
  async start(bound: readonly ListenerAddress[]): Promise<void> {
    if (this.options.storage === undefined) return;
    const listeners: Record<string, BrokerEndpoint> = {};
    for (const listener of bound) {
      const host = this.options.advertisedHost ?? (WILDCARDS.has(listener.host) ? hostname() : listener.host);
      const port =
        listener.name === 'tcp' && this.options.advertisedPort !== undefined
          ? this.options.advertisedPort
          : listener.port;
      listeners[listener.name] = { host, port };
    }
    this.listeners = listeners;
    await this.beat();
    this.schedule();
  }

  /** Live broker ids, ascending. Empty while this broker is cut off from peers it knew. */
  brokers(): readonly number[] {
    return this.live;
  }

  /** Where clients reach broker `nodeId` on `listener`, or null for a broker not known here. */
  endpoint(nodeId: number, listener: string): BrokerEndpoint | null {
    return this.peers.get(nodeId)?.record.listeners[listener] ?? null;
  }

  /** The broker leading a partition, or null while no broker is known to be live. */
  leaderOf(topic: string, partition: number): number | null {
    return this.ownerOf(`partition:${topic}/${partition}`);
  }

  leads(topic: string, partition: number): boolean {
    return this.leaderOf(topic, partition) === this.options.nodeId;
  }

  /** The coordinator of a consumer group (key type 0) or a transactional id (1). */
  coordinatorOf(key: string, keyType = 0): number | null {
    return this.ownerOf(keyType === 1 ? `transaction:${key}` : `group:${key}`);
  }

  coordinates(groupId: string): boolean {
    return this.coordinatorOf(groupId) === this.options.nodeId;
  }

  /** The lowest live id, reported as the controller, or this broker's own while none is live. */
  controllerId(): number {
    return this.live[0] ?? this.options.nodeId;
  }

  private ownerOf(key: string): number | null {
    if (this.live.length === 1) return this.live[0]!;
    return this.live.length === 0 ? null : ownerOf(key, this.live);
  }

  /** Calls `listener` whenever the live brokers change; returns what removes it. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Stops the heartbeats and removes this broker's record, so peers take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.listeners === null) return;
    try {
      await this.options.meta.delete(this.key(this.options.nodeId));
    } catch (error) {
      this.logger.warn(
        { err: error },
        'could not remove this broker from the cluster; peers will time it out',
      );
    }
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
    const { meta, nodeId } = this.options;
    try {
      const record: BrokerRecord = {
        nodeId,
        listeners: this.listeners!,
        storage: this.options.storage!,
        beatAt: this.now(),
      };
      await meta.put(this.key(nodeId), Buffer.from(JSON.stringify(record)));
      this.lastBeat = this.now();
      const entries = await meta.list(BROKERS_PREFIX);
      this.observe(entries.map((e) => ({ key: e.key, value: e.value, modRevision: e.modRevision })));
    } catch (error) {
      this.logger.warn({ err: error }, 'broker heartbeat to the meta service failed');
    }
    this.update();
  }

  private observe(entries: readonly { key: string; value: Uint8Array; modRevision: number }[]): void {
    const now = this.now();
    const seen = new Set<number>();
    for (const entry of entries) {
      const record = parseRecord(entry.value);
      if (!record || entry.key !== this.key(record.nodeId) || record.nodeId === this.options.nodeId) continue;
      if (record.storage !== this.options.storage) continue;
      seen.add(record.nodeId);
      const known = this.peers.get(record.nodeId);
      if (known?.modRevision === entry.modRevision) continue;
      // A record met for the first time counts from its own heartbeat time, within one timeout.
      const changedAt =
        known === undefined
          ? Math.min(now, Math.max(record.beatAt, now - this.options.sessionTimeoutMs))
          : now;
      this.peers.set(record.nodeId, { record, modRevision: entry.modRevision, changedAt });
    }
    for (const id of [...this.peers.keys()]) if (!seen.has(id)) this.peers.delete(id);
    this.forgetLongGone(now);
  }

  /** Records of brokers gone for many timeouts are removed, compared by revision so none comes back. */
  private forgetLongGone(now: number): void {
    for (const [id, peer] of this.peers) {
      if (now - peer.changedAt < 10 * this.options.sessionTimeoutMs) continue;
      this.peers.delete(id);
      this.options.meta.delete(this.key(id), { ifRevision: peer.modRevision }).catch(() => {
        // Another broker removed it first, or it came back: either way nothing to do.
      });
    }
  }

  private update(): void {
    const now = this.now();
    const alive = [...this.peers.values()]
      .filter((p) => now - p.changedAt < this.options.sessionTimeoutMs)
      .map((p) => p.record.nodeId);
    // A broker that cannot reach the meta service while peers exist steps back, as a Kafka broker
    // fenced by its controller does: the peers will have taken over its groups and partitions.
    const cutOff = this.peers.size > 0 && now - this.lastBeat >= this.options.sessionTimeoutMs;
    const live = (cutOff ? alive : [...alive, this.options.nodeId]).sort((a, b) => a - b);
    if (live.length === this.live.length && live.every((id, i) => id === this.live[i])) return;
    this.logger.info({ brokers: live, was: this.live }, 'Kafka brokers changed');
    this.live = live;
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
      typeof record.listeners === 'object' &&
      record.listeners !== null
    ) {
      return record as BrokerRecord;
    }
  } catch {
    // Not a record this version understands: left out of the view.
  }
  return null;
}
