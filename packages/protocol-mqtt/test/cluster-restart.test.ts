import {
  InProcessBrokers,
  silentLogger,
  type BrokerCluster,
  type MetaStore,
  type StorageEngine,
} from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryMeta, startInProcess } from './helpers/in-process.js';
import { connectClient, connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';
import { SESSIONS_PREFIX, SessionLog, sessionKey } from '../src/session-log.js';

// A broker of a cluster started again (after kill -9, say) while the others go on: what it routes
// before it has joined the cluster, and what they send it before its sessions are back, must
// still reach every subscriber.

/** A broker's view of the cluster that sees no broker, itself included, until `join()`. */
function joiningLate(member: BrokerCluster) {
  let joined = false;
  const listeners = new Set<() => void>();
  const cluster: BrokerCluster = {
    ...member,
    brokers: (name) => (joined ? member.brokers(name) : []),
    peers: (name) => (joined ? member.peers(name) : []),
    onChange: (listener) => {
      const told = () => {
        if (joined) listener();
      };
      listeners.add(told);
      const off = member.onChange(told);
      return () => {
        listeners.delete(told);
        off();
      };
    },
  };
  return {
    cluster,
    join() {
      joined = true;
      for (const told of listeners) told();
    },
  };
}

/** A meta store whose listing of session records waits for `open()`. */
function sessionsListedLate(meta: MetaStore) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const gated: MetaStore = {
    ...meta,
    list: async (...args: Parameters<MetaStore['list']>) => {
      if (args[0].startsWith(SESSIONS_PREFIX)) await opened;
      return meta.list(...args);
    },
  };
  return { meta: gated, open };
}

/** A broker's view of the cluster that can lose sight of broker `other`, as when its record times out. */
function losingSightOf(member: BrokerCluster, other: number) {
  let hidden = false;
  const listeners = new Set<() => void>();
  const seen = (ids: readonly number[]) => (hidden ? ids.filter((id) => id !== other) : ids);
  const cluster: BrokerCluster = {
    ...member,
    brokers: (name) => seen(member.brokers(name)),
    peers: (name) => seen(member.peers(name)),
    onChange: (listener) => {
      listeners.add(listener);
      const off = member.onChange(listener);
      return () => {
        listeners.delete(listener);
        off();
      };
    },
  };
  const sees = (value: boolean) => {
    hidden = !value;
    for (const listener of listeners) listener();
  };
  return { cluster, lose: () => sees(false), regain: () => sees(true) };
}

/**
 * The storage as seen by one broker, whose reads of session logs wait for `open()` (`reached`
 * once one waits), or fail until then with `failing`.
 */
function sessionLogsReadLate(storage: StorageEngine, failing = false) {
  let open!: () => void;
  let reach!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (reach = resolve));
  let isOpen = false;
  void opened.then(() => (isOpen = true));
  const gated = new Proxy(storage, {
    get(target, name) {
      if (name === 'shardInfo') {
        return async (...args: Parameters<StorageEngine['shardInfo']>) => {
          if (args[0].startsWith('mqtt-sessions/') && !isOpen) {
            reach();
            if (failing) throw new Error('the journal is not reachable');
            await opened;
          }
          return target.shardInfo(...args);
        };
      }
      const value: unknown = Reflect.get(target, name, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { storage: gated, open, reached };
}

/** The broker that the stored record of `clientId`'s session names. */
async function servingBroker(meta: MetaStore, clientId: string): Promise<number | undefined> {
  const entry = await meta.get(SESSIONS_PREFIX + sessionKey(clientId));
  return entry === null
    ? undefined
    : (JSON.parse(Buffer.from(entry.value).toString()) as { node?: number }).node;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a broker started again in a cluster', () => {
  const stops: Array<() => Promise<void>> = [];
  const clients: MqttClient[] = [];

  afterEach(async () => {
    await endAll(clients.splice(0));
    for (const stop of stops.splice(0)) await stop();
  });

  it('sends other brokers a QoS 2 message its last run left unrouted, routed before it has joined', async () => {
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const links = new InProcessBrokers();
    const two = await startInProcess({}, { meta, storage, cluster: links.member(2) });
    stops.push(() => two.stop());
    const subscriber = await connectWithInbox(two.port, { clientId: 'control-room', protocolVersion: 5 });
    clients.push(subscriber.client);
    await subscriber.client.subscribeAsync('plant/alarm', { qos: 2 });

    // What broker 1 left when it was killed: a QoS 2 message stored with its packet id (so its
    // publisher had PUBREC, and will send PUBREL), not yet marked routed.
    const lastRun = new SessionLog('press-4', storage, meta, silentLogger, 1);
    await lastRun.saveRecord({
      clientId: 'press-4',
      expiryInterval: 600,
      subscriptions: [],
      node: 1,
      disconnectedAt: null,
    });
    await lastRun.append({
      t: 'i',
      p: 7,
      m: {
        topic: 'plant/alarm',
        payload: Buffer.from('overheat').toString('base64'),
        qos: 2,
        retain: false,
        expiresAt: 0,
        publisherId: 'press-4',
        timestamp: Date.now(),
        uid: '1.lastrun.0',
        exactlyOnce: true,
      },
    });

    const joining = joiningLate(links.member(1));
    const one = await startInProcess({}, { meta, storage, cluster: joining.cluster });
    stops.push(() => one.stop());
    joining.join();

    expect((await subscriber.inbox.at(0)).payload).toBe('overheat');
    expect((await subscriber.inbox.settle(200)).length).toBe(1);
  });

  it('answers a client that connects before it has joined once it has, instead of refusing it', async () => {
    const links = new InProcessBrokers();
    const joining = joiningLate(links.member(1));
    const one = await startInProcess({}, { cluster: joining.cluster });
    stops.push(() => one.stop());
    const connecting = connectClient(one.port, { clientId: 'press-5', protocolVersion: 5 });
    connecting.catch(() => {});
    await sleep(200);
    joining.join();
    const client = await connecting;
    clients.push(client);
    await client.publishAsync('plant/alarm', 'pressure', { qos: 1 });
  });

  /** Brokers 1 and 2, and a persistent session subscribed to `plant/#` that broker 2 served and stopped with. */
  async function sessionOfStoppedBroker(viewOfOne = (member: BrokerCluster) => member) {
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const links = new InProcessBrokers();
    const one = await startInProcess({}, { meta, storage, cluster: viewOfOne(links.member(1)) });
    stops.push(() => one.stop());
    const firstRun = await startInProcess({}, { meta, storage, cluster: links.member(2) });
    const away = await connectClient(firstRun.port, session);
    await away.subscribeAsync('plant/#', { qos: 1 });
    await away.endAsync();
    await firstRun.stop();
    return { meta, storage, links, one };
  }

  /** One copy of the message is queued for the session, and its client gets it once on `port`. */
  async function expectQueuedOnce(port: number, storage: StorageEngine, meta: MetaStore) {
    const entries = await new SessionLog('control-room', storage, meta, silentLogger, 1).read();
    expect(entries.filter((entry) => entry.t === 'm')).toHaveLength(1);
    const back = await connectWithInbox(port, session);
    clients.push(back.client);
    expect(back.connack.sessionPresent).toBe(true);
    expect((await back.inbox.at(0)).payload).toBe('pressure');
    expect((await back.inbox.settle(200)).length).toBe(1);
  }

  const session = {
    clientId: 'control-room',
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 600 },
  } as const;

  it('holds a message another broker forwards while it brings its sessions back', async () => {
    const { meta, storage, links, one } = await sessionOfStoppedBroker();

    // Started again, and reading its session records back when broker 1 routes a message to it.
    const listing = sessionsListedLate(meta);
    const member = links.member(2);
    const secondRun = startInProcess({}, { meta: listing.meta, storage, cluster: member });
    stops.push(async () => (await secondRun).stop());
    const cluster = one.context.cluster!;
    while (!cluster.peers('mqtt').includes(2)) await sleep(10);
    const publisher = await connectClient(one.port, { clientId: 'press-5' });
    clients.push(publisher);
    const acknowledged = publisher.publishAsync('plant/alarm', 'pressure', { qos: 1 });
    await Promise.race([acknowledged, sleep(300)]);
    listing.open();
    await acknowledged;

    const back = await connectWithInbox((await secondRun).port, session);
    clients.push(back.client);
    expect(back.connack.sessionPresent).toBe(true);
    expect((await back.inbox.at(0)).payload).toBe('pressure');
  });

  it('brings back only the sessions of its last run that no broker took over as it started', async () => {
    let sight!: ReturnType<typeof losingSightOf>;
    const { meta, storage, links, one } = await sessionOfStoppedBroker(
      (member) => (sight = losingSightOf(member, 2)).cluster,
    );

    // Started again, broker 2 has listed the records naming it and reads their logs when broker 1,
    // which has just counted it gone, takes the session over.
    const reading = sessionLogsReadLate(storage);
    const secondRun = startInProcess({}, { meta, storage: reading.storage, cluster: links.member(2) });
    stops.push(async () => (await secondRun).stop());
    await reading.reached;
    sight.lose();
    while ((await servingBroker(meta, 'control-room')) !== 1) await sleep(10);
    reading.open();
    const two = await secondRun;
    sight.regain();
    while (!one.context.cluster!.peers('mqtt').includes(2)) await sleep(10);

    // One broker serves the session: a message is queued for it once, not also by a copy of it
    // brought back on broker 2.
    const publisher = await connectClient(one.port, { clientId: 'press-5' });
    clients.push(publisher);
    await publisher.publishAsync('plant/alarm', 'pressure', { qos: 1 });
    await expectQueuedOnce(two.port, storage, meta);
  });

  it('reads back a session its record names it for but whose log it could not read at start', async () => {
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const links = new InProcessBrokers();
    const firstRun = await startInProcess({}, { meta, storage, cluster: links.member(2) });
    const away = await connectClient(firstRun.port, session);
    await away.subscribeAsync('plant/#', { qos: 1 });
    await away.endAsync();
    const publisher = await connectClient(firstRun.port, { clientId: 'press-5' });
    await publisher.publishAsync('plant/alarm', 'pressure', { qos: 1 });
    await publisher.endAsync();
    await firstRun.stop();

    const reading = sessionLogsReadLate(storage, true);
    const secondRun = await startInProcess({}, { meta, storage: reading.storage, cluster: links.member(2) });
    stops.push(() => secondRun.stop());
    reading.open();

    const back = await connectWithInbox(secondRun.port, session);
    clients.push(back.client);
    expect(back.connack.sessionPresent).toBe(true);
    expect((await back.inbox.at(0)).payload).toBe('pressure');
  });

  it('lets a session of its last run go to another broker only once it has it back', async () => {
    const { meta, storage, links, one } = await sessionOfStoppedBroker();
    const reading = sessionLogsReadLate(storage);
    const secondRun = startInProcess({}, { meta, storage: reading.storage, cluster: links.member(2) });
    stops.push(async () => (await secondRun).stop());
    while (!one.context.cluster!.peers('mqtt').includes(2)) await sleep(10);

    // The client comes back on broker 1 while broker 2 is still reading the session's log.
    const connecting = connectClient(one.port, session);
    await Promise.race([connecting, sleep(300)]);
    reading.open();
    const onOne = await connecting;
    await onOne.endAsync();
    const publisher = await connectClient(one.port, { clientId: 'press-5' });
    clients.push(publisher);
    await publisher.publishAsync('plant/alarm', 'pressure', { qos: 1 });
    await secondRun;

    // Broker 1 serves the session alone: one copy of the message is queued for it, not a second
    // by a copy of the session broker 2 brought back after letting it go.
    await expectQueuedOnce(one.port, storage, meta);
  });
});
