import { ErrorCode, InProcessBrokers, RobustMQError, type StorageEngine } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { linkedBrokers, memoryMeta, startInProcess } from './helpers/in-process.js';
import { connectClient, connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';

// Two MQTT brokers in this process on one meta store and one storage, linked by a cluster whose
// calls between them this test can hold back: what happens while a session moves, step by step.

/**
 * The storage as one broker sees it, whose session logs cannot be read while it is `out` (a
 * journal node restarting); `reached` once a read was refused.
 */
function sessionLogsOut(storage: StorageEngine) {
  let out = false;
  let reach!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  const seen = new Proxy(storage, {
    get(target, name) {
      const value: unknown = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      const call = (value as (...a: unknown[]) => unknown).bind(target);
      if (name !== 'shardInfo' && name !== 'read') return call;
      return (shard: string, ...rest: unknown[]) => {
        if (out && shard.startsWith('mqtt-sessions/')) {
          reach();
          return Promise.reject(
            new RobustMQError(ErrorCode.Unavailable, 'the journal node is not reachable'),
          );
        }
        return call(shard, ...rest);
      };
    },
  });
  return { storage: seen, reached, setOut: (value: boolean) => (out = value) };
}

describe('a session moving between brokers, step by step', () => {
  const stops: Array<() => Promise<void>> = [];
  const clients: MqttClient[] = [];

  afterEach(async () => {
    await endAll(clients.splice(0));
    for (const stop of stops.splice(0)) await stop();
  });

  async function twoBrokers() {
    const { a, b, links, meta, storage } = await linkedBrokers();
    stops.push(
      () => a.stop(),
      () => b.stop(),
    );
    return { a, b, links, meta, storage };
  }

  it('gives the session once what both brokers got while it moved', async () => {
    const { a, b, links } = await twoBrokers();
    const options = {
      protocolVersion: 5 as const,
      clientId: 'mover',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const first = await connectWithInbox(a.port, options);
    clients.push(first.client);
    await first.client.subscribeAsync('moves/#', { qos: 1 });
    // Three publishers, one message each.
    const publishers = await Promise.all(
      [0, 1, 2].map((i) => connectClient(b.port, { clientId: `publisher-${i}` })),
    );
    clients.push(...publishers);

    // Broker 2 starts taking the session over, but its request to broker 1 to let go is held:
    // meanwhile messages reach both, broker 1's session (still connected) and broker 2's stand-in,
    // and their PUBACKs wait until the session has moved and has them.
    let letGo!: () => void;
    links.hold('mqtt.release', new Promise<void>((resolve) => (letGo = resolve)));
    const second = connectWithInbox(b.port, options);
    await new Promise((r) => setTimeout(r, 50));
    const during = publishers.map((p, i) => p.publishAsync('moves/x', `during-${i}`, { qos: 1 }));
    await first.inbox.waitFor(3);
    // The client's PUBACKs reach broker 1 before it lets go: nothing is left in flight to resend.
    await new Promise((r) => setTimeout(r, 100));
    letGo();
    await Promise.all(during);
    const moved = await second;
    clients.push(moved.client);
    expect(moved.connack.sessionPresent).toBe(true);
    await publishers[0]!.publishAsync('moves/x', 'after', { qos: 1 });
    await moved.inbox.waitFor(1);
    await moved.inbox.settle(300);

    expect(first.inbox.messages.map((m) => m.payload).sort()).toEqual(['during-0', 'during-1', 'during-2']);
    // Only what came after: the three were given once, on the first connection.
    expect(moved.inbox.messages.map((m) => m.payload)).toEqual(['after']);
  });

  it('keeps for the session what was published while it moved from a broker where it was offline', async () => {
    const { a, b, links } = await twoBrokers();
    const options = { clientId: 'sleeper', clean: false };
    const { client } = await connectWithInbox(a.port, options);
    await client.subscribeAsync('night/#', { qos: 1 });
    await client.endAsync();
    const publisherA = await connectClient(a.port, { clientId: 'publisher-a' });
    const publisherB = await connectClient(b.port, { clientId: 'publisher-b' });
    clients.push(publisherA, publisherB);

    let letGo!: () => void;
    links.hold('mqtt.release', new Promise<void>((resolve) => (letGo = resolve)));
    const back = connectWithInbox(b.port, options);
    await new Promise((r) => setTimeout(r, 50));
    // Each message reaches the session on broker 1 (queued in its log) and the stand-in on broker
    // 2. The PUBACKs wait until the session has moved and holds them in its log.
    let acknowledged = 0;
    const published = [
      publisherA.publishAsync('night/a', 'published-on-1', { qos: 1 }),
      publisherB.publishAsync('night/b', 'published-on-2', { qos: 1 }),
    ].map((p) => p.then(() => acknowledged++));
    await new Promise((r) => setTimeout(r, 100));
    expect(acknowledged).toBe(0);
    letGo();
    const resumed = await back;
    clients.push(resumed.client);
    await Promise.all(published);
    expect(resumed.connack.sessionPresent).toBe(true);
    const got = (await resumed.inbox.waitFor(2)).map((m) => m.payload).sort();
    expect(got).toEqual(['published-on-1', 'published-on-2']);
    await resumed.inbox.settle(300);
    expect(resumed.inbox.messages).toHaveLength(2);
  });

  it('keeps for the session what was published on the broker it moves to while that broker read its record', async () => {
    const { a, b, links, meta } = await twoBrokers();
    const options = { clientId: 'early', clean: false };
    const { client } = await connectWithInbox(a.port, options);
    await client.subscribeAsync('early/#', { qos: 1 });
    await client.endAsync();
    const publisher = await connectClient(b.port, { clientId: 'publisher-early' });
    clients.push(publisher);

    // Broker 2 reads the session's record slowly, and what it forwards to broker 1 meanwhile
    // reaches broker 1 only once broker 1 has let the session go: only broker 2 can keep it.
    let readRecord!: () => void;
    const recordRead = new Promise<void>((resolve) => (readRecord = resolve));
    const get = meta.get.bind(meta);
    meta.get = async (key) => {
      if (key.startsWith('/mqtt/sessions/')) await recordRead;
      return get(key);
    };
    let forward!: () => void;
    links.hold('mqtt.publish', new Promise<void>((resolve) => (forward = resolve)));
    const back = connectWithInbox(b.port, options);
    await new Promise((r) => setTimeout(r, 50));
    const published = publisher.publishAsync('early/x', 'while-reading', { qos: 1 });
    await new Promise((r) => setTimeout(r, 50));
    readRecord();
    const resumed = await back;
    clients.push(resumed.client);
    forward();
    await published;
    expect(resumed.connack.sessionPresent).toBe(true);
    expect((await resumed.inbox.waitFor(1)).map((m) => m.payload)).toEqual(['while-reading']);
    await resumed.inbox.settle(300);
    expect(resumed.inbox.messages).toHaveLength(1);
  });

  it('keeps for the session a message still on its way to the broker it moves from', async () => {
    const { a, b, links } = await twoBrokers();
    const options = { clientId: 'sleeper', clean: false };
    const away = await connectClient(a.port, options);
    await away.subscribeAsync('night/#', { qos: 1 });
    await away.endAsync();
    const publisher = await connectClient(b.port, { clientId: 'publisher-b' });
    clients.push(publisher);

    // Published on broker 2 and forwarded to broker 1, which serves the session; the forward is
    // held (broker 1 restarting, say) while the client comes back on broker 2.
    let arrive!: () => void;
    links.hold('mqtt.publish', new Promise<void>((resolve) => (arrive = resolve)));
    const published = publisher.publishAsync('night/b', 'on-its-way', { qos: 1 });
    await new Promise((r) => setTimeout(r, 50));
    const back = connectWithInbox(b.port, options);
    await new Promise((r) => setTimeout(r, 100));
    arrive();
    links.hold(null);
    await published;
    const resumed = await back;
    clients.push(resumed.client);
    expect(resumed.connack.sessionPresent).toBe(true);
    expect((await resumed.inbox.at(0)).payload).toBe('on-its-way');
  });

  it('answers a client whose session a broker that stopped answering served once it counts as gone', async () => {
    const { a, b, links } = await twoBrokers();
    const options = { clientId: 'orphan', clean: false };
    const away = await connectClient(a.port, options);
    await away.subscribeAsync('night/#', { qos: 1 });
    await away.endAsync();
    const publisher = await connectClient(a.port, { clientId: 'publisher-a' });
    await publisher.publishAsync('night/a', 'queued', { qos: 1 });
    await publisher.endAsync();

    // Broker 1 is killed: the client comes back on broker 2 before broker 2 counts broker 1 gone,
    // and its request to let the session go gets no answer.
    let gone!: () => void;
    links.hold('mqtt.release', new Promise<void>((resolve) => (gone = resolve)));
    const back = connectWithInbox(b.port, { ...options, connectTimeout: 20_000 });
    await new Promise((r) => setTimeout(r, 100));
    links.remove(1);
    gone();
    links.hold(null);
    const resumed = await back;
    clients.push(resumed.client);
    expect(resumed.connack.sessionPresent).toBe(true);
    expect((await resumed.inbox.at(0)).payload).toBe('queued');
  });

  it('waits for storage that cannot serve for a moment rather than refusing the client', async () => {
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const links = new InProcessBrokers();
    const outage = sessionLogsOut(storage);
    const a = await startInProcess({}, { meta, storage, cluster: links.member(1) });
    const b = await startInProcess({}, { meta, storage: outage.storage, cluster: links.member(2) });
    stops.push(
      () => a.stop(),
      () => b.stop(),
    );
    await new Promise((r) => setTimeout(r, 20));
    const options = {
      protocolVersion: 5 as const,
      clientId: 'outage',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const away = await connectClient(a.port, options);
    await away.subscribeAsync('outage/#', { qos: 1 });
    await away.endAsync();
    const publisher = await connectClient(a.port, { clientId: 'outage-publisher' });
    clients.push(publisher);
    await publisher.publishAsync('outage/1', 'queued', { qos: 1 });

    // The client comes back on broker 2 while the session's log cannot be read there.
    outage.setOut(true);
    const back = connectWithInbox(b.port, { ...options, connectTimeout: 20_000 });
    await outage.reached;
    await new Promise((r) => setTimeout(r, 700));
    outage.setOut(false);
    const resumed = await back;
    clients.push(resumed.client);
    expect(resumed.connack.sessionPresent).toBe(true);
    expect((await resumed.inbox.at(0)).payload).toBe('queued');
  });

  it('gives a session two brokers take at once to one of them, refusing neither client', async () => {
    const { a, b, links, meta, storage } = await twoBrokers();
    const c = await startInProcess({}, { meta, storage, cluster: links.member(3) });
    stops.push(() => c.stop());
    const options = {
      protocolVersion: 5 as const,
      clientId: 'twice',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const away = await connectClient(a.port, options);
    await away.subscribeAsync('twice/#', { qos: 1 });
    await away.endAsync();

    // The client connects to brokers 2 and 3 at once (its first CONNECT timed out on its side,
    // say): each asks broker 1 to let go, then both claim the session's record.
    let letGo!: () => void;
    links.hold('mqtt.release', new Promise<void>((resolve) => (letGo = resolve)));
    const connecting = [connectWithInbox(b.port, options), connectWithInbox(c.port, options)];
    await new Promise((r) => setTimeout(r, 50));
    letGo();
    links.hold(null);
    const both = await Promise.all(connecting);
    clients.push(...both.map((one) => one.client));
    await new Promise((r) => setTimeout(r, 300));
    const survivors = both.filter((one) => one.client.connected);
    expect(survivors).toHaveLength(1);
    expect(survivors[0]!.connack.sessionPresent).toBe(true);
    const publisher = await connectClient(a.port, { clientId: 'twice-publisher' });
    clients.push(publisher);
    await publisher.publishAsync('twice/1', 'hello', { qos: 1 });
    await survivors[0]!.inbox.waitFor(1);
    expect((await survivors[0]!.inbox.settle(200)).map((m) => m.payload)).toEqual(['hello']);
  });

  it('keeps one session and one connection when a client id connects to both brokers at once', async () => {
    const { a, b } = await twoBrokers();
    const options = { protocolVersion: 5 as const, clientId: 'twice', clean: false };
    const both = await Promise.all([connectWithInbox(a.port, options), connectWithInbox(b.port, options)]);
    clients.push(...both.map((c) => c.client));
    await new Promise((r) => setTimeout(r, 300));
    // The later CONNECT takes the session over: the other connection is closed, and one broker holds it.
    expect(both.filter((c) => c.client.connected)).toHaveLength(1);
    const survivor = both.find((c) => c.client.connected)!;
    // Both brokers' admin views (which span the cluster) name the one broker serving it.
    const seen = await Promise.all(
      [a, b].map((broker) => broker.plugin.adminResources().sessions!.get('twice')),
    );
    expect(seen.map((item) => item?.broker)).toEqual([seen[0]!.broker, seen[0]!.broker]);
    expect([1, 2]).toContain(seen[0]!.broker);
    const holder = seen[0]!.broker === 1 ? a : b;
    expect(survivor).toBe(both[holder === a ? 0 : 1]);
    // The session works there: a message published on the other broker reaches it once.
    await survivor.client.subscribeAsync('twice/#', { qos: 1 });
    const publisher = await connectClient((holder === a ? b : a).port, { clientId: 'twice-publisher' });
    clients.push(publisher);
    await publisher.publishAsync('twice/1', 'hello', { qos: 1 });
    await survivor.inbox.waitFor(1);
    expect((await survivor.inbox.settle(200)).map((m) => m.payload)).toEqual(['hello']);
  });
});
