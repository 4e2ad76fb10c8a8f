import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RobustMQError, silentLogger, type MetaStore } from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { createRpcServer, type RpcServer } from '@robustmq/rpc';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ServerBrokerCluster } from '../src/cluster/broker-cluster.js';

// The brokers of one storage as each sees them, through heartbeat records in a shared meta store
// and calls between their RPC servers.

describe('ServerBrokerCluster', () => {
  let dir: string;
  let meta: MetaStore;
  const servers: RpcServer[] = [];
  const clusters: ServerBrokerCluster[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'broker-cluster-'));
    meta = await openLocalMetaStore({ dir, logger: silentLogger });
  });

  afterEach(async () => {
    for (const cluster of clusters.splice(0)) await cluster.stop();
    for (const server of servers.splice(0)) await server.close();
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function broker(
    nodeId: number,
    storage = 'journal@127.0.0.1:1228',
    through: MetaStore = meta,
    timing = { heartbeatMs: 50, sessionTimeoutMs: 400 },
  ): Promise<ServerBrokerCluster> {
    const rpc = createRpcServer({ host: '127.0.0.1', port: 0, logger: silentLogger });
    await rpc.listen();
    servers.push(rpc);
    const cluster = new ServerBrokerCluster({
      meta: through,
      nodeId,
      storage,
      rpc,
      rpcHost: '127.0.0.1',
      ...timing,
      logger: silentLogger,
    });
    clusters.push(cluster);
    return cluster;
  }

  async function until(condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('condition not met');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('sees the brokers on the same storage, agrees on owners and calls their handlers', async () => {
    const b1 = await broker(1);
    const b2 = await broker(2);
    const other = await broker(3, 'journal@127.0.0.1:9999');
    b2.handle('echo', (body) => Promise.resolve({ from: 2, body }));
    const changes: number[][] = [];
    b1.onChange(() => changes.push([...b1.brokers()]));
    // Before its first heartbeat a broker cannot tell who is live: it claims nothing.
    expect(b1.brokers()).toEqual([]);
    await Promise.all([b1.start(), b2.start(), other.start()]);
    await until(() => b1.brokers().length === 2 && b2.brokers().length === 2);
    expect(changes[0]).toEqual([1]);
    expect(changes.at(-1)).toEqual([1, 2]);
    expect(b1.brokers()).toEqual([1, 2]);
    expect(b1.peers()).toEqual([2]);
    expect(other.brokers()).toEqual([3]);

    // Each protocol counts the brokers that announced it; peers see an announcement at a heartbeat.
    expect(b1.brokers('kafka')).toEqual([]);
    b1.announce('kafka', { listeners: { tcp: { host: '127.0.0.1', port: 9092 } } });
    expect(b1.brokers('kafka')).toEqual([1]);
    await until(() => b2.brokers('kafka').length === 1);
    expect(b2.announced(1, 'kafka')).toEqual({ listeners: { tcp: { host: '127.0.0.1', port: 9092 } } });
    expect(b2.peers('kafka')).toEqual([1]);
    const told = changes.length;
    b2.announce('kafka', {});
    await until(() => b1.brokers('kafka').length === 2);
    expect(changes.length).toBeGreaterThan(told);

    expect(await b1.call(2, 'echo', { n: 7 })).toEqual({ from: 2, body: { n: 7 } });
    await expect(b1.call(3, 'echo', {})).rejects.toMatchObject({ code: ErrorCode.Unavailable });
    b2.handle('refuse', () => Promise.reject(new RobustMQError(ErrorCode.Conflict, 'no')));
    await expect(b1.call(2, 'refuse', {})).rejects.toMatchObject({ code: ErrorCode.Conflict });
  });

  it('is known to the brokers already there once it has started, not at their next heartbeat', async () => {
    // Heartbeats a minute apart: only the joining broker itself can tell the others in time.
    const timing = { heartbeatMs: 60_000, sessionTimeoutMs: 120_000 };
    const b1 = await broker(1, undefined, meta, timing);
    const elsewhere = await broker(3, 'journal@127.0.0.1:9999', meta, timing);
    b1.announce('mqtt', {});
    await Promise.all([b1.start(), elsewhere.start()]);
    const changes: number[][] = [];
    b1.onChange(() => changes.push([...b1.brokers()]));

    const b2 = await broker(2, undefined, meta, timing);
    b2.announce('mqtt', {});
    await b2.start();
    expect(b2.brokers()).toEqual([1, 2]);
    expect(b1.brokers()).toEqual([1, 2]);
    expect(b1.peers('mqtt')).toEqual([2]);
    expect(changes).toEqual([[1, 2]]);
    expect(elsewhere.brokers()).toEqual([3]);
  });

  it('tells the others at once when a broker stops, and after the session timeout when it goes silent', async () => {
    const b1 = await broker(1);
    const b2 = await broker(2);
    const b3 = await broker(3);
    await Promise.all([b1.start(), b2.start(), b3.start()]);
    await until(() => b1.brokers().length === 3);

    const stoppedAt = Date.now();
    await b2.stop();
    await until(() => !b1.brokers().includes(2));
    expect(Date.now() - stoppedAt).toBeLessThan(400);

    // A broker that stops beating without removing its record (a kill -9).
    const silentAt = Date.now();
    (b3 as unknown as { stopped: boolean; timer: NodeJS.Timeout | null }).stopped = true;
    clearTimeout((b3 as unknown as { timer: NodeJS.Timeout }).timer);
    await until(() => !b1.brokers().includes(3));
    expect(Date.now() - silentAt).toBeGreaterThanOrEqual(300);
    expect(b1.peers()).toEqual([]);
  });

  it('steps back while it cannot reach the meta service, and comes back when it can', async () => {
    let cut = false;
    const unreachable = () =>
      Promise.reject(new RobustMQError(ErrorCode.Unavailable, 'meta service unreachable'));
    const faulty = new Proxy(meta, {
      get(target, property, receiver) {
        if (cut && (property === 'put' || property === 'list')) return unreachable;
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const b1 = await broker(1);
    const b2 = await broker(2, undefined, faulty);
    await Promise.all([b1.start(), b2.start()]);
    await until(() => b1.brokers().length === 2 && b2.brokers().length === 2);

    cut = true;
    // Its peers will take over what it owned, so it claims nothing: no live broker, itself included.
    await until(() => b2.brokers().length === 0);
    await until(() => b1.brokers().length === 1);
    expect(b1.brokers()).toEqual([1]);

    cut = false;
    await until(() => b1.brokers().length === 2 && b2.brokers().length === 2);
  });

  it('does not count a peer gone for the time it could not read the store itself', async () => {
    const cut = new Set<number>();
    const unreachable = () =>
      Promise.reject(new RobustMQError(ErrorCode.Unavailable, 'meta service unreachable'));
    const through = (nodeId: number) =>
      new Proxy(meta, {
        get(target, property, receiver) {
          if (cut.has(nodeId) && (property === 'put' || property === 'list')) return unreachable;
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    const b1 = await broker(1, undefined, through(1));
    const b2 = await broker(2, undefined, through(2));
    await Promise.all([b1.start(), b2.start()]);
    await until(() => b1.brokers().length === 2 && b2.brokers().length === 2);

    // The meta service goes away for both, for longer than the session timeout (400 ms).
    cut.add(1).add(2);
    await new Promise((r) => setTimeout(r, 700));
    // Broker 1 reaches it again first; broker 2 only 250 ms later (its back-off, say).
    cut.delete(1);
    await until(() => b1.brokers().includes(1));
    const seen: number[][] = [];
    for (let i = 0; i < 6; i++) {
      seen.push([...b1.brokers()]);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(seen.every((brokers) => brokers.includes(2))).toBe(true);
    cut.delete(2);
    await until(() => b1.brokers().length === 2 && b2.brokers().length === 2);
  });
});
