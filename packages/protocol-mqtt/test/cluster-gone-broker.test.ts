import { createHash } from 'node:crypto';
import { InProcessBrokers, rendezvousOwner, type BrokerCluster, type MetaStore } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryMeta, startInProcess } from './helpers/in-process.js';
import { connectClient, connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';

// Three MQTT brokers in this process. Broker 2 serves persistent sessions whose clients are away,
// and goes (a crash: it answers nothing more) while broker 1 is sending it messages for them. The
// publishers were not acknowledged yet; the messages must reach those sessions where brokers 1
// and 3 take them over, once each.

/** A client id whose session the live brokers `live` give to broker `owner`. */
function clientIdFor(owner: number, live: number[], prefix: string): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    if (rendezvousOwner(`mqtt-session:${id}`, live) === owner) return id;
  }
}

/**
 * `meta` whose listings wait while closed: a broker's listing of stored sessions, and so its
 * takeover of a gone broker's sessions, is under way for as long as a test says.
 */
function gatedListing(meta: MetaStore) {
  let gate: Promise<void> | null = null;
  let letThrough: () => void = () => {};
  return {
    meta: {
      ...meta,
      list: async (...args: Parameters<MetaStore['list']>) => {
        if (gate !== null) await gate;
        return meta.list(...args);
      },
    } satisfies MetaStore,
    close: () => {
      gate = new Promise<void>((resolve) => (letThrough = resolve));
    },
    open: () => {
      gate = null;
      letThrough();
    },
  };
}

describe('messages for a broker that goes before it has them', () => {
  const stops: Array<() => Promise<void>> = [];
  const clients: MqttClient[] = [];

  afterEach(async () => {
    await endAll(clients.splice(0));
    for (const stop of stops.splice(0)) await stop();
  });

  async function threeBrokers(wrap: (member: BrokerCluster) => BrokerCluster = (m) => m) {
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const links = new InProcessBrokers();
    const brokers = [];
    for (const id of [1, 2, 3]) {
      const broker = await startInProcess({}, { meta, storage, cluster: wrap(links.member(id)) });
      stops.push(() => broker.stop());
      brokers.push(broker);
    }
    await new Promise((r) => setTimeout(r, 20));
    return { a: brokers[0]!, b: brokers[1]!, c: brokers[2]!, links };
  }

  /** A persistent session subscribed to `orders/#` on the broker at `port`, its client gone. */
  async function awaySession(port: number, clientId: string): Promise<void> {
    const client = await connectClient(port, { clientId, clean: false });
    await client.subscribeAsync('orders/#', { qos: 1 });
    await client.endAsync();
  }

  async function collect(port: number, clientId: string, count: number): Promise<string[]> {
    const { client, inbox, connack } = await connectWithInbox(port, { clientId, clean: false });
    clients.push(client);
    expect(connack.sessionPresent).toBe(true);
    await inbox.waitFor(count);
    return (await inbox.settle(300)).map((m) => m.payload);
  }

  it('gives them to its sessions where the live brokers take them over', async () => {
    const { a, b, c, links } = await threeBrokers();
    // One session goes to broker 3, the other to broker 1 (the publisher's own).
    const toThree = clientIdFor(3, [1, 3], 'far');
    const toOne = clientIdFor(1, [1, 3], 'near');
    await awaySession(b.port, toThree);
    await awaySession(b.port, toOne);

    let open: () => void = () => {};
    links.hold('mqtt.publish', new Promise<void>((resolve) => (open = resolve)));
    const publisher = await connectClient(a.port, { clientId: 'publisher' });
    clients.push(publisher);
    const acknowledged = ['first', 'second', 'third'].map((text) =>
      publisher.publishAsync('orders/1', text, { qos: 1 }),
    );
    // Broker 2 has not answered: no PUBACK yet.
    let acked = 0;
    for (const ack of acknowledged) void ack.then(() => acked++);
    await new Promise((r) => setTimeout(r, 100));
    expect(acked).toBe(0);

    // Broker 2 goes; the calls held for it fail, and broker 1 finds it gone.
    links.remove(2);
    links.hold(null);
    open();
    await Promise.all(acknowledged);

    expect(await collect(c.port, toThree, 3)).toEqual(['first', 'second', 'third']);
    expect(await collect(a.port, toOne, 3)).toEqual(['first', 'second', 'third']);
  });

  it('gives what is published while the sessions of the gone broker are being taken over', async () => {
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const links = new InProcessBrokers();
    const listing = gatedListing(meta);
    const a = await startInProcess({}, { meta: listing.meta, storage, cluster: links.member(1) });
    stops.push(() => a.stop());
    const b = await startInProcess({}, { meta, storage, cluster: links.member(2) });
    stops.push(() => b.stop());
    await new Promise((r) => setTimeout(r, 20));
    await awaySession(b.port, 'away');
    const publisher = await connectClient(a.port, { clientId: 'publisher' });
    clients.push(publisher);

    listing.close();
    links.remove(2);
    const acknowledged = ['during 1', 'during 2'].map((text) =>
      publisher.publishAsync('orders/1', text, { qos: 1 }),
    );
    await new Promise((r) => setTimeout(r, 200));
    listing.open();
    await Promise.all(acknowledged);

    expect(await collect(a.port, 'away', 2)).toEqual(['during 1', 'during 2']);
  });

  it('gives what was routed for the gone broker to a session its client is claiming at that moment', async () => {
    const meta = memoryMeta();
    const listing = gatedListing(meta);
    // Once armed, the second look at a session log (the claim's read after it took the session
    // record) waits at a gate: the claim is under way for as long as the test says.
    let logLooks: number | null = null;
    let logGate: Promise<void> = Promise.resolve();
    class GatedStorage extends MemoryStorageEngine {
      override async shardInfo(shard: string) {
        if (logLooks !== null && shard.startsWith('mqtt-sessions/') && ++logLooks >= 2) await logGate;
        return super.shardInfo(shard);
      }
    }
    const storage = new GatedStorage();
    const links = new InProcessBrokers();
    const a = await startInProcess({}, { meta: listing.meta, storage, cluster: links.member(1) });
    stops.push(() => a.stop());
    const b = await startInProcess({}, { meta, storage, cluster: links.member(2) });
    stops.push(() => b.stop());
    await new Promise((r) => setTimeout(r, 20));
    await awaySession(b.port, 'away');

    // A message for the session is on its way to broker 2, which goes before it answers.
    let openLinks: () => void = () => {};
    links.hold('mqtt.publish', new Promise<void>((resolve) => (openLinks = resolve)));
    const publisher = await connectClient(a.port, { clientId: 'publisher' });
    clients.push(publisher);
    const acknowledged = publisher.publishAsync('orders/1', 'in flight', { qos: 1 });
    await new Promise((r) => setTimeout(r, 50));
    listing.close();
    let openLog: () => void = () => {};
    logGate = new Promise<void>((resolve) => (openLog = resolve));
    logLooks = 0;
    links.remove(2);
    links.hold(null);
    openLinks();

    // The session's client comes back to broker 1, which takes the session record first.
    const back = connectWithInbox(a.port, { clientId: 'away', clean: false });
    const recordKey = `/mqtt/sessions/${createHash('sha256').update('away').digest('hex')}`;
    await expect
      .poll(async () => {
        const entry = await meta.get(recordKey);
        return entry && (JSON.parse(Buffer.from(entry.value).toString()) as { node?: number }).node;
      })
      .toBe(1);
    // Then broker 1's takeover finds nothing left to take; the message is routed for broker 2's
    // sessions while the claim is still reading the session's log back.
    listing.open();
    await Promise.race([acknowledged, new Promise((r) => setTimeout(r, 500))]);
    openLog();
    await acknowledged;

    const { client, inbox } = await back;
    clients.push(client);
    await inbox.waitFor(1);
    expect((await inbox.settle(300)).map((m) => m.payload)).toEqual(['in flight']);
  });

  it('does not give a session again what the gone broker had stored for it', async () => {
    let failNext = false;
    let removeTwo: () => void = () => {};
    // Broker 1's next call to broker 2 reaches it, but broker 2 goes before answering.
    const answerLost = (member: BrokerCluster): BrokerCluster =>
      member.nodeId !== 1
        ? member
        : {
            ...member,
            call: async <T>(id: number, method: string, body: unknown): Promise<T> => {
              const answer = await member.call<T>(id, method, body);
              if (method === 'mqtt.publish' && id === 2 && failNext) {
                failNext = false;
                removeTwo();
                throw new Error('broker 2 went before answering');
              }
              return answer;
            },
          };
    const { a, b, c, links } = await threeBrokers(answerLost);
    removeTwo = () => links.remove(2);
    const toThree = clientIdFor(3, [1, 3], 'far');
    await awaySession(b.port, toThree);
    const publisher = await connectClient(a.port, { clientId: 'publisher' });
    clients.push(publisher);
    failNext = true;
    await publisher.publishAsync('orders/1', 'once', { qos: 1 });
    await publisher.publishAsync('orders/1', 'after', { qos: 1 });

    expect(await collect(c.port, toThree, 2)).toEqual(['once', 'after']);
  });

  it('gives a shared group its messages once, through a member taken over from it', async () => {
    const { a, b, c, links } = await threeBrokers();
    // A persistent member of the group on broker 2 (its session goes to broker 3), and a connected
    // one on broker 3; the publisher's broker has none, so it sends the group's messages to each in turn.
    const away = clientIdFor(3, [1, 3], 'away-member');
    const member = await connectClient(b.port, { clientId: away, clean: false });
    await member.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
    await member.endAsync();
    const live = await connectWithInbox(c.port, { clientId: 'live-member', clean: false });
    clients.push(live.client);
    await live.client.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
    await new Promise((r) => setTimeout(r, 50));

    let open: () => void = () => {};
    links.hold('mqtt.publish', new Promise<void>((resolve) => (open = resolve)));
    const publisher = await connectClient(a.port, { clientId: 'job-publisher' });
    clients.push(publisher);
    const jobs = ['j1', 'j2', 'j3', 'j4', 'j5', 'j6'];
    const acknowledged = jobs.map((job) => publisher.publishAsync('jobs/x', job, { qos: 1 }));
    await new Promise((r) => setTimeout(r, 100));
    links.remove(2);
    links.hold(null);
    open();
    await Promise.all(acknowledged);

    const toLive = (await live.inbox.settle(300)).map((m) => m.payload);
    const back = await connectWithInbox(c.port, { clientId: away, clean: false });
    clients.push(back.client);
    expect(back.connack.sessionPresent).toBe(true);
    const toAway = (await back.inbox.settle(500)).map((m) => m.payload);
    // Each job once, across the group: the live member's and the taken-over member's.
    expect(toAway.length).toBeGreaterThan(0);
    expect([...toLive, ...toAway].sort()).toEqual(jobs);
  });
});
