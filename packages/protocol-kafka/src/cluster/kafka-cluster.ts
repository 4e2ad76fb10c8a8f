import { hostname } from 'node:os';
import {
  rendezvousOwner,
  silentLogger,
  soloCluster,
  type BrokerCluster,
  type ListenerAddress,
  type Logger,
  type MetaStore,
} from '@robustmq/core';
import { PreferredLeaders } from './preferred-leaders.js';

/** Where clients reach a broker on one listener. */
export interface BrokerEndpoint {
  host: string;
  port: number;
}

/** What a Kafka broker announces to the cluster: where clients reach it, by listener name. */
export interface KafkaAnnouncement {
  listeners: Record<string, BrokerEndpoint>;
}

/** The name Kafka brokers announce themselves by. */
export const KAFKA = 'kafka';

export interface KafkaClusterOptions {
  /** The node's brokers on shared storage; absent, this broker serves alone. */
  cluster: BrokerCluster | undefined;
  nodeId: number;
  /** The host other brokers' clients are sent to, when set (`advertised_host`). */
  advertisedHost?: string;
  /** The port other brokers' clients are sent to on the `tcp` listener, when set. */
  advertisedPort?: number;
  /**
   * The meta store of the topic catalog: in a cluster, the partitions' preferred leaders (manual
   * replica assignments) are read from it.
   */
  meta?: MetaStore;
  logger?: Logger;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * The Kafka brokers of the cluster as this broker sees them: the live brokers on this node's
 * storage that announced Kafka listeners. Brokers are stateless, but a consumer group needs one
 * coordinator and a partition one leader (its idempotent producers' sequences are checked in one
 * place), so every broker picks them the same way from the live Kafka brokers: a partition created
 * with a replica assignment is led by the first live broker of its list, anything else by
 * rendezvous hashing. On storage no other broker reaches (the partitions' data would not follow a
 * leader that moves), this broker is the only one.
 */
export class KafkaCluster {
  private readonly cluster: BrokerCluster;
  /** In a cluster, the preferred leaders of the catalog's partitions; alone, every leader is this one. */
  private readonly preferred: PreferredLeaders | null;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: KafkaClusterOptions) {
    this.cluster = options.cluster ?? soloCluster(options.nodeId);
    this.preferred =
      options.cluster && options.meta
        ? new PreferredLeaders(options.meta, () => this.changed(), options.logger ?? silentLogger)
        : null;
  }

  /** Announces this broker's bound listeners to the cluster. */
  start(bound: readonly ListenerAddress[]): void {
    const listeners: Record<string, BrokerEndpoint> = {};
    for (const listener of bound) {
      const host = this.options.advertisedHost ?? (WILDCARDS.has(listener.host) ? hostname() : listener.host);
      const port =
        listener.name === 'tcp' && this.options.advertisedPort !== undefined
          ? this.options.advertisedPort
          : listener.port;
      listeners[listener.name] = { host, port };
    }
    const announcement: KafkaAnnouncement = { listeners };
    this.cluster.announce(KAFKA, announcement);
  }

  /**
   * Live Kafka broker ids, ascending. In a cluster, empty until this broker has announced its
   * listeners and joined, and while it is cut off from peers it knew: it then claims nothing.
   */
  brokers(): readonly number[] {
    return this.cluster.brokers(KAFKA);
  }

  /** Where clients reach broker `nodeId` on `listener`, or null for a broker not known here. */
  endpoint(nodeId: number, listener: string): BrokerEndpoint | null {
    const announced = this.cluster.announced(nodeId, KAFKA) as KafkaAnnouncement | undefined;
    return announced?.listeners[listener] ?? null;
  }

  /**
   * The broker leading a partition, or null while no broker is known to be live, and in a cluster
   * until the preferred leaders have been read (another broker may be the one preferred).
   */
  leaderOf(topic: string, partition: number): number | null {
    const brokers = this.brokers();
    if (brokers.length === 0) return null;
    if (this.preferred) {
      if (!this.preferred.loaded) return null;
      for (const id of this.preferred.of(topic, partition)) if (brokers.includes(id)) return id;
    }
    return rendezvousOwner(`partition:${topic}/${partition}`, brokers);
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
    return this.brokers()[0] ?? this.options.nodeId;
  }

  private ownerOf(key: string): number | null {
    const brokers = this.brokers();
    return brokers.length === 0 ? null : rendezvousOwner(key, brokers);
  }

  /**
   * Calls `listener` whenever leaders or coordinators may have moved (the live Kafka brokers, or
   * the preferred leaders of a topic); returns what removes it.
   */
  onChange(listener: () => void): () => void {
    const stopWatching = this.cluster.onChange(listener);
    this.listeners.add(listener);
    return () => {
      stopWatching();
      this.listeners.delete(listener);
    };
  }

  /** Stops following the preferred leaders. */
  stop(): void {
    this.preferred?.stop();
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
