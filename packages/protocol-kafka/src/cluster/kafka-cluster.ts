import { hostname } from 'node:os';
import { rendezvousOwner, soloCluster, type BrokerCluster, type ListenerAddress } from '@robustmq/core';

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
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * The Kafka brokers of the cluster as this broker sees them: the live brokers on this node's
 * storage that announced Kafka listeners. Brokers are stateless, but a consumer group needs one
 * coordinator and a partition one leader (its idempotent producers' sequences are checked in one
 * place), so every broker picks them the same way from the live Kafka brokers, by rendezvous
 * hashing. On storage no other broker reaches (the partitions' data would not follow a leader
 * that moves), this broker is the only one.
 */
export class KafkaCluster {
  private readonly cluster: BrokerCluster;

  constructor(private readonly options: KafkaClusterOptions) {
    this.cluster = options.cluster ?? soloCluster(options.nodeId);
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
    return this.brokers()[0] ?? this.options.nodeId;
  }

  private ownerOf(key: string): number | null {
    const brokers = this.brokers();
    return brokers.length === 0 ? null : rendezvousOwner(key, brokers);
  }

  /** Calls `listener` whenever the live Kafka brokers may have changed; returns what removes it. */
  onChange(listener: () => void): () => void {
    return this.cluster.onChange(listener);
  }
}
