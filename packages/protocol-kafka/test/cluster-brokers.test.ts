import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeTopic,
  ErrorCode,
  RobustMQError,
  topicKey,
  type BrokerCluster,
  type ListenerAddress,
  type PeerHandler,
  type Topic,
} from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { describe, expect, it } from 'vitest';
import { KafkaCluster } from '../src/cluster/kafka-cluster.js';
import { waitFor } from './helpers/group-members.js';

// The Kafka brokers as one broker sees them, over the cluster the server gives it. The cluster's
// own liveness (heartbeats, timeouts, a broker cut off) is tested with the server.

const listening = (port: number): ListenerAddress[] => [
  { name: 'tcp', transport: 'tcp', host: '127.0.0.1', port },
];

/** Brokers that all see the same live set, each with what it announced. */
class SharedView {
  live: number[] = [];
  readonly announcements = new Map<number, Map<string, unknown>>();
  private readonly listeners = new Set<() => void>();

  member(nodeId: number): BrokerCluster {
    this.live.push(nodeId);
    this.live.sort((a, b) => a - b);
    const view = this.announcements;
    view.set(nodeId, new Map());
    const brokers = (name?: string) =>
      this.live.filter((id) => name === undefined || view.get(id)?.has(name));
    return {
      nodeId,
      brokers,
      peers: (name) => brokers(name).filter((id) => id !== nodeId),
      announce: (name, value) => {
        if (value === undefined) view.get(nodeId)!.delete(name);
        else view.get(nodeId)!.set(name, value);
        this.changed();
      },
      announced: (id, name) => view.get(id)?.get(name),
      onChange: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
      call: () => Promise.reject(new RobustMQError(ErrorCode.Unavailable, 'not in this test')),
      handle: (_method: string, _handler: PeerHandler) => {},
    };
  }

  leave(nodeId: number): void {
    this.live = this.live.filter((id) => id !== nodeId);
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

describe('the Kafka brokers of a cluster', () => {
  it('is this broker alone without a cluster; in one, claims nothing until it has announced itself', () => {
    const alone = new KafkaCluster({ cluster: undefined, nodeId: 1 });
    alone.start(listening(9092));
    expect(alone.brokers()).toEqual([1]);
    expect(alone.coordinates('any-group')).toBe(true);
    expect(alone.leads('any-topic', 7)).toBe(true);

    const view = new SharedView();
    const early = new KafkaCluster({ cluster: view.member(2), nodeId: 2 });
    expect(early.brokers()).toEqual([]);
    expect(early.leads('any-topic', 0)).toBe(false);
    early.start(listening(9092));
    expect(early.brokers()).toEqual([2]);
  });

  it('counts the brokers that announced Kafka, agrees on owners and gives clients their listeners', () => {
    const view = new SharedView();
    const one = new KafkaCluster({ cluster: view.member(1), nodeId: 1 });
    const two = new KafkaCluster({ cluster: view.member(2), nodeId: 2, advertisedHost: 'kafka-2.example' });
    // Broker 3 runs no Kafka listener (MQTT only): it leads nothing.
    view.member(3);
    one.start(listening(9092));
    two.start(listening(9093));

    expect(one.brokers()).toEqual([1, 2]);
    expect(one.endpoint(2, 'tcp')).toEqual({ host: 'kafka-2.example', port: 9093 });
    expect(two.endpoint(1, 'tcp')).toEqual({ host: '127.0.0.1', port: 9092 });
    expect(one.endpoint(3, 'tcp')).toBeNull();
    const groups = Array.from({ length: 40 }, (_, i) => `group-${i}`);
    for (const group of groups) {
      expect(one.coordinatorOf(group)).toBe(two.coordinatorOf(group));
      expect(one.coordinates(group)).not.toBe(two.coordinates(group));
    }
    const leaders = new Set(Array.from({ length: 16 }, (_, p) => one.leaderOf('orders', p)));
    expect([...leaders].sort()).toEqual([1, 2]);
    expect(one.controllerId()).toBe(1);

    const changes: number[][] = [];
    one.onChange(() => changes.push([...one.brokers()]));
    view.leave(2);
    expect(changes).toEqual([[1]]);
    expect(groups.every((g) => one.coordinates(g))).toBe(true);
  });

  it('claims nothing while cut off from the cluster', () => {
    const view = new SharedView();
    const one = new KafkaCluster({ cluster: view.member(1), nodeId: 1 });
    one.start(listening(9092));
    // A broker cut off from the meta service sees no live broker, itself included.
    view.leave(1);
    expect(one.brokers()).toEqual([]);
    expect(one.coordinatorOf('billing')).toBeNull();
    expect(one.coordinates('billing')).toBe(false);
    expect(one.leads('orders', 0)).toBe(false);
    expect(one.controllerId()).toBe(1);
  });

  it('leads a partition by its preferred brokers from the catalog, the first live one, on every broker', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kafka-preferred-leaders-'));
    const meta = await openLocalMetaStore({ dir });
    const view = new SharedView();
    const one = new KafkaCluster({ cluster: view.member(1), nodeId: 1, meta });
    const two = new KafkaCluster({ cluster: view.member(2), nodeId: 2, meta });
    try {
      one.start(listening(9092));
      two.start(listening(9093));
      // Until the catalog is read, a partition may be another broker's preferred one: none is claimed.
      expect(one.leaderOf('orders', 0)).toBeNull();
      await waitFor('the catalog read', () => one.leaderOf('orders', 0) !== null, 5000);
      const changes: number[] = [];
      one.onChange(() => changes.push(one.leaderOf('orders', 0)!));
      const orders: Topic = {
        name: 'orders',
        partitions: 4,
        storageClass: 'file',
        retentionMs: null,
        retentionBytes: null,
        configs: {},
        createdAt: 1,
        // Broker 3 runs no Kafka listener here: partition 2 goes to its next broker.
        preferredLeaders: [
          [2, 1],
          [1, 2],
          [3, 2],
        ],
      };
      await meta.put(topicKey('orders'), encodeTopic(orders));
      await waitFor('the topic seen', () => one.leaderOf('orders', 0) === 2, 5000);
      await waitFor('the topic seen', () => two.leaderOf('orders', 0) === 2, 5000);
      const leaders = (cluster: KafkaCluster) => [0, 1, 2, 3].map((p) => cluster.leaderOf('orders', p));
      expect(leaders(one)).toEqual(leaders(two));
      expect(leaders(one).slice(0, 3)).toEqual([2, 1, 2]);
      expect(changes).toEqual([2]);
      expect(one.leads('orders', 1)).toBe(true);
      expect(two.leads('orders', 0)).toBe(true);

      // A preferred broker gone: the next one of the list, or any live broker when none is left.
      view.leave(2);
      expect(leaders(one)).toEqual([1, 1, 1, 1]);

      await meta.delete(topicKey('orders'));
      await waitFor('the topic forgotten', () => changes.length === 3, 5000);
    } finally {
      one.stop();
      two.stop();
      await meta.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
