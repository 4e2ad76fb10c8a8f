import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RobustMQError, silentLogger, type ListenerAddress, type MetaStore } from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BROKERS_PREFIX, KafkaCluster } from '../src/cluster/kafka-cluster.js';
import { rendezvousOwner as ownerOf } from '@robustmq/core';
import { FaultyMeta } from './helpers/faulty-node.js';
import { waitFor } from './helpers/group-members.js';

const JOURNAL = 'journal@127.0.0.1:1228';
const HEARTBEAT_MS = 20;
const SESSION_TIMEOUT_MS = 300;

const listening = (port: number): ListenerAddress[] => [
  { name: 'tcp', transport: 'tcp', host: '127.0.0.1', port },
];

let dir: string;
let meta: MetaStore;
const started: KafkaCluster[] = [];

function cluster(nodeId: number, options: { storage?: string | undefined; meta?: MetaStore } = {}) {
  const view = new KafkaCluster({
    meta: options.meta ?? meta,
    nodeId,
    storage: 'storage' in options ? options.storage : JOURNAL,
    heartbeatMs: HEARTBEAT_MS,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    logger: silentLogger,
  });
  started.push(view);
  return view;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'robustmq-kafka-brokers-'));
  meta = await openLocalMetaStore({ dir, logger: silentLogger });
});

afterEach(async () => {
  for (const view of started.splice(0)) await view.stop();
  await meta.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the Kafka brokers of a cluster', () => {
  it('is this broker alone until it starts, and on storage no other broker reaches', async () => {
    const alone = cluster(1, { storage: undefined });
    expect(alone.brokers()).toEqual([1]);
    await alone.start(listening(9092));
    const other = cluster(2);
    await other.start(listening(9093));
    await new Promise((r) => setTimeout(r, 5 * HEARTBEAT_MS));
    // Local storage: the partitions' data would not follow a leader elsewhere, so nothing is shared.
    expect(alone.brokers()).toEqual([1]);
    expect(other.brokers()).toEqual([2]);
    expect(await meta.list(BROKERS_PREFIX)).toHaveLength(1);
    expect(alone.coordinates('any-group')).toBe(true);
    expect(alone.leads('any-topic', 7)).toBe(true);
  });

  it('sees brokers on the same storage, agrees on owners, and lets a stopped one go at once', async () => {
    const one = cluster(1);
    const two = cluster(2);
    const elsewhere = cluster(3, { storage: 'journal@10.0.0.9:1228' });
    await Promise.all([
      one.start(listening(9092)),
      two.start(listening(9093)),
      elsewhere.start(listening(9094)),
    ]);
    await waitFor('both to see each other', () => one.brokers().length === 2 && two.brokers().length === 2);
    expect(one.brokers()).toEqual([1, 2]);
    expect(two.endpoint(1, 'tcp')).toEqual({ host: '127.0.0.1', port: 9092 });
    expect(one.endpoint(3, 'tcp')).toBeNull();
    const groups = Array.from({ length: 40 }, (_, i) => `group-${i}`);
    for (const group of groups) {
      expect(one.coordinatorOf(group)).toBe(two.coordinatorOf(group));
      expect(one.coordinates(group)).not.toBe(two.coordinates(group));
    }
    // Both brokers get some of the partitions.
    const leaders = new Set(Array.from({ length: 16 }, (_, p) => one.leaderOf('orders', p)));
    expect([...leaders].sort()).toEqual([1, 2]);

    const changes: number[][] = [];
    one.onChange(() => changes.push([...one.brokers()]));
    await two.stop();
    await waitFor('the stopped broker to be gone', () => one.brokers().length === 1, 2_000);
    expect(changes).toEqual([[1]]);
    expect(groups.every((g) => one.coordinates(g))).toBe(true);
  });

  it('drops a broker that stops beating after the session timeout, and one cut off steps back', async () => {
    const faulty = new FaultyMeta(meta);
    const one = cluster(1);
    const two = cluster(2, { meta: faulty });
    await Promise.all([one.start(listening(9092)), two.start(listening(9093))]);
    await waitFor('both to see each other', () => one.brokers().length === 2 && two.brokers().length === 2);

    faulty.fail(BROKERS_PREFIX, () => new RobustMQError(ErrorCode.Unavailable, 'meta service unreachable'));
    const cutAt = Date.now();
    await waitFor('the silent broker to be dropped', () => one.brokers().length === 1, 3_000);
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(SESSION_TIMEOUT_MS - 2 * HEARTBEAT_MS);
    expect(one.brokers()).toEqual([1]);
    // The broker that cannot reach the meta service claims nothing, and cannot tell who is live:
    // its clients are told no coordinator or leader is available, and look elsewhere.
    await waitFor('the cut-off broker to step back', () => !two.brokers().includes(2), 3_000);
    expect(two.brokers()).toEqual([]);
    expect(two.coordinatorOf('billing')).toBeNull();
    expect(two.coordinates('billing')).toBe(false);
    expect(two.leads('orders', 0)).toBe(false);

    faulty.heal();
    await waitFor('the broker to be back', () => one.brokers().length === 2 && two.brokers().length === 2);
  });
});

describe('who owns a key', () => {
  it('moves only the keys a new broker takes', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `partition:orders/${i}`);
    const before = keys.map((k) => ownerOf(k, [1, 2, 3]));
    const after = keys.map((k) => ownerOf(k, [1, 2, 3, 4]));
    const moved = keys.filter((_, i) => before[i] !== after[i]);
    expect(moved.every((k) => ownerOf(k, [1, 2, 3, 4]) === 4)).toBe(true);
    // About a quarter move to the new broker; each broker keeps a fair share.
    expect(moved.length).toBeGreaterThan(150);
    expect(moved.length).toBeLessThan(350);
    for (const id of [1, 2, 3]) {
      const share = before.filter((owner) => owner === id).length;
      expect(share).toBeGreaterThan(250);
    }
    expect(ownerOf('anything', [])).toBeNull();
    expect(ownerOf('anything', [7])).toBe(7);
  });
});
