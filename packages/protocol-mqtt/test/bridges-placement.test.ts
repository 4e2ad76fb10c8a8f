import { createServer, type Server, type Socket } from 'node:net';
import { rendezvousOwner, silentLogger, type BrokerCluster, type Logger } from '@robustmq/core';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgePlacement, MqttBridges } from '../src/bridges.js';
import { parseSettings } from '../src/config.js';
import { TestMetrics } from './helpers/in-process.js';

/**
 * Brokers that see each other as the test says: a broker has joined once `join`ed, until it
 * `leave`s (stopped, or cut off: then it sees no broker either). Listeners are told at once.
 */
class FakeCluster {
  private readonly joined = new Set<number>();
  private readonly announcements = new Map<number, Map<string, unknown>>();
  private readonly listeners = new Map<number, Set<() => void>>();

  member(nodeId: number): BrokerCluster {
    const announced = new Map<string, unknown>();
    const listeners = new Set<() => void>();
    this.announcements.set(nodeId, announced);
    this.listeners.set(nodeId, listeners);
    const brokers = (announcing?: string): readonly number[] =>
      this.joined.has(nodeId)
        ? [...this.joined]
            .filter((id) => announcing === undefined || this.announcements.get(id)!.has(announcing))
            .sort((a, b) => a - b)
        : [];
    return {
      nodeId,
      brokers,
      peers: (announcing) => brokers(announcing).filter((id) => id !== nodeId),
      announce: (name, value) => {
        if (value === undefined) announced.delete(name);
        else announced.set(name, value);
        this.changed();
      },
      announced: (id, name) => this.announcements.get(id)?.get(name),
      onChange: (listener) => {
        listeners.add(listener);
        if (this.joined.has(nodeId)) listener();
        return () => listeners.delete(listener);
      },
      call: () => Promise.reject(new Error('no calls between these brokers')),
      handle: () => {},
    };
  }

  join(nodeId: number): void {
    this.joined.add(nodeId);
    this.changed();
  }

  leave(nodeId: number): void {
    this.joined.delete(nodeId);
    this.changed();
  }

  private changed(): void {
    for (const listeners of this.listeners.values()) for (const listener of listeners) listener();
  }
}

/** The info lines a broker logged. */
function recordingLogger(lines: Array<{ msg: string } & Record<string, unknown>>): Logger {
  const log = (fields: object | string, msg?: string) => {
    if (typeof fields === 'object') lines.push({ ...fields, msg: msg ?? '' });
  };
  return { ...silentLogger, info: log, child: () => recordingLogger(lines) };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('where the bridges of a cluster run', () => {
  /** Broker `nodeId` with bridges `names` configured: which of them run there, and its log. */
  function broker(
    cluster: FakeCluster,
    nodeId: number,
    names: readonly string[],
    stopping: () => Promise<unknown> = settle,
  ) {
    const running = new Set<string>();
    const log: Array<{ msg: string } & Record<string, unknown>> = [];
    const placement = new BridgePlacement(
      cluster.member(nodeId),
      names,
      {
        start: (name) => {
          expect(running.has(name)).toBe(false);
          running.add(name);
        },
        stop: async (name) => {
          await stopping();
          running.delete(name);
        },
      },
      recordingLogger(log),
    );
    placement.start();
    return { nodeId, running, log, placement };
  }

  const NAMES = ['cloud', 'factory', 'backup', 'alarms', 'audit', 'edge'];

  /** By bridge: the brokers running it. */
  function runners(brokers: ReadonlyArray<ReturnType<typeof broker>>, names = NAMES) {
    return Object.fromEntries(
      names.map((name) => [name, brokers.filter((b) => b.running.has(name)).map((b) => b.nodeId)]),
    );
  }

  it('runs each bridge on exactly one of three brokers with the same config, and moves it when that one leaves', async () => {
    const cluster = new FakeCluster();
    const brokers = [1, 2, 3].map((id) => broker(cluster, id, NAMES));
    for (const id of [1, 2, 3]) cluster.join(id);
    await settle();
    const placed = runners(brokers);
    for (const name of NAMES) {
      expect(placed[name]).toHaveLength(1);
      // Every broker agrees on the owner.
      for (const b of brokers) expect(b.placement.owner(name)).toBe(placed[name]![0]);
    }
    // Spread over the brokers, not all on one.
    expect(new Set(Object.values(placed).flat()).size).toBeGreaterThan(1);

    const owner = placed.cloud![0]!;
    const gone = brokers.find((b) => b.nodeId === owner)!;
    for (const b of brokers) b.log.length = 0;
    cluster.leave(owner);
    await settle();
    await settle();
    // The broker that left (cut off, say) runs nothing; each bridge it ran is on one other broker.
    expect(gone.running.size).toBe(0);
    const moved = runners(brokers);
    for (const name of NAMES) {
      expect(moved[name]).toHaveLength(1);
      expect(moved[name]![0]).not.toBe(owner);
      // Only the bridges of the broker that left moved.
      if (placed[name]![0] !== owner) expect(moved[name]).toEqual(placed[name]);
    }
    const taker = moved.cloud![0]!;
    expect(gone.log).toContainEqual(
      expect.objectContaining({ msg: 'this broker no longer runs the bridge', bridge: 'cloud', owner: null }),
    );
    expect(brokers.find((b) => b.nodeId === taker)!.log).toContainEqual(
      expect.objectContaining({ msg: 'this broker runs the bridge', bridge: 'cloud', owner: taker }),
    );

    // It comes back: its bridges return to it, as the others see it.
    cluster.join(owner);
    await settle();
    await settle();
    expect(runners(brokers)).toEqual(placed);
  });

  it('never gives a bridge to a broker without it in its config', async () => {
    const cluster = new FakeCluster();
    const brokers = [broker(cluster, 1, []), broker(cluster, 2, ['cloud']), broker(cluster, 3, NAMES)];
    for (const id of [1, 2, 3]) cluster.join(id);
    await settle();
    expect(brokers[0]!.running.size).toBe(0);
    const placed = runners(brokers);
    for (const name of NAMES) {
      expect(placed[name]).toHaveLength(1);
      if (name !== 'cloud') expect(placed[name]).toEqual([3]);
    }
    // With the only other broker that has it gone, the one that has it runs it.
    cluster.leave(placed.cloud![0] === 2 ? 3 : 2);
    await settle();
    await settle();
    expect(brokers[0]!.running.size).toBe(0);
    expect(runners(brokers, ['cloud']).cloud).toHaveLength(1);
  });

  it('runs no bridge before the broker joins the cluster', async () => {
    const cluster = new FakeCluster();
    const alone = broker(cluster, 1, NAMES);
    await settle();
    expect(alone.running.size).toBe(0);
    cluster.join(1);
    await settle();
    expect([...alone.running].sort()).toEqual([...NAMES].sort());
  });

  it('starts a bridge it takes from a live broker only once that one has stopped it', async () => {
    const cluster = new FakeCluster();
    let letStop: () => void = () => {};
    // Among brokers 1 and 2, bridge `factory` goes to broker 2.
    expect(rendezvousOwner('bridge:factory', [1, 2])).toBe(2);
    const first = broker(cluster, 1, ['factory'], () => new Promise<void>((resolve) => (letStop = resolve)));
    cluster.join(1);
    await settle();
    expect([...first.running]).toEqual(['factory']);
    const second = broker(cluster, 2, ['factory']);
    cluster.join(2);
    await settle();
    await settle();
    // Broker 1 is still stopping it: broker 2 waits.
    expect(first.running.has('factory')).toBe(true);
    expect(second.running.size).toBe(0);
    expect(second.log).toContainEqual(
      expect.objectContaining({ msg: 'the bridge starts here once stopped there', runningOn: [1] }),
    );
    letStop();
    await settle();
    await settle();
    expect(first.running.size).toBe(0);
    expect([...second.running]).toEqual(['factory']);
  });

  it('stops its bridges and withdraws them when the broker stops, so that another takes them', async () => {
    const cluster = new FakeCluster();
    const brokers = [1, 2].map((id) => broker(cluster, id, NAMES));
    for (const id of [1, 2]) cluster.join(id);
    await settle();
    const [first, second] = brokers as [ReturnType<typeof broker>, ReturnType<typeof broker>];
    await first.placement.stop();
    expect(first.running.size).toBe(0);
    await settle();
    expect(second.running.size).toBe(NAMES.length);
  });
});

describe('bridges of three brokers with the same config', () => {
  const servers: Server[] = [];
  const bridges: MqttBridges[] = [];

  afterEach(async () => {
    await Promise.all(bridges.splice(0).map((b) => b.stop()));
    for (const server of servers.splice(0)) server.close();
  });

  /** A server answering MQTT 5 CONNECTs with success, counting the connections it is opened. */
  async function fakeBroker(): Promise<{ port: number; connections: () => number }> {
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.once('data', () => socket.write(Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00])));
      socket.on('error', () => {});
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    server.on('close', () => sockets.forEach((s) => s.destroy()));
    return { port: (server.address() as { port: number }).port, connections: () => sockets.length };
  }

  it('connect one bridge, from one broker, to the remote; another once that broker leaves', async () => {
    const remote = await fakeBroker();
    const cluster = new FakeCluster();
    const { bridges: settings } = parseSettings({
      bridges: [
        {
          name: 'cloud',
          address: `127.0.0.1:${remote.port}`,
          topics: [{ pattern: 'out/#', direction: 'out', qos: 1 }],
        },
      ],
    });
    const brokers = await Promise.all(
      [1, 2, 3].map(async (nodeId) => {
        const listener = await fakeBroker();
        const member = new MqttBridges(
          settings,
          { logger: silentLogger, metrics: new TestMetrics(), setSys: () => {}, clearSys: () => {} },
          cluster.member(nodeId),
        );
        bridges.push(member);
        await member.start({ name: 'tcp', transport: 'tcp', host: '127.0.0.1', port: listener.port });
        cluster.join(nodeId);
        return { nodeId, listener };
      }),
    );
    await expect.poll(() => remote.connections()).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(remote.connections()).toBe(1);
    const connected = brokers.filter((b) => b.listener.connections() > 0);
    expect(connected).toHaveLength(1);

    cluster.leave(connected[0]!.nodeId);
    await expect.poll(() => remote.connections()).toBe(2);
    expect(brokers.filter((b) => b.listener.connections() > 0)).toHaveLength(2);
  });
});
