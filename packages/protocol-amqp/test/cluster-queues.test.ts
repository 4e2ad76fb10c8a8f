import { InProcessBrokers, rendezvousOwner, type MetaStore } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryMeta, startInProcess } from './helpers/in-process.js';
import { TestClient, type TestReceiver } from './helpers/rhea-client.js';

// AMQP brokers in this process on one storage and meta store, linked by an in-process cluster:
// a queue's consumers on every broker compete for its messages through the queue's owner.

type Broker = Awaited<ReturnType<typeof startInProcess>>;

/** A queue name that `owner` owns among `brokers`. */
function queueOwnedBy(owner: number, brokers: number[], base: string): string {
  for (let i = 0; ; i++) if (rendezvousOwner(`${base}-${i}`, brokers) === owner) return `${base}-${i}`;
}

async function until(what: string, done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AMQP queues across brokers', () => {
  const stops: Array<() => Promise<void>> = [];
  const clients: TestClient[] = [];
  let links: InProcessBrokers;
  let meta: MetaStore;
  let storage: MemoryStorageEngine;

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  async function startBroker(nodeId: number): Promise<Broker> {
    const broker = await startInProcess({}, { meta, storage, cluster: links.member(nodeId) });
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      links.remove(nodeId);
      await broker.stop();
    };
    stops.push(stop);
    return { ...broker, stop };
  }

  async function brokers(...ids: number[]): Promise<Broker[]> {
    links = new InProcessBrokers();
    meta = memoryMeta();
    storage = new MemoryStorageEngine();
    const started = await Promise.all(ids.map((id) => startBroker(id)));
    // Each has seen the others once its view has settled.
    await sleep(50);
    return started;
  }

  async function client(broker: Broker): Promise<TestClient> {
    const connected = await TestClient.connect(broker.port);
    clients.push(connected);
    return connected;
  }

  async function send(broker: Broker, address: string, bodies: string[]): Promise<void> {
    const sender = await (await client(broker)).sender(address);
    for (const body of bodies) expect((await sender.send({ body, durable: true })).outcome).toBe('accepted');
  }

  const bodies = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`);

  it('gives each message to one consumer, whichever broker it is on', async () => {
    const [one, two] = await brokers(1, 2);
    const queue = queueOwnedBy(2, [1, 2], 'spread');
    const onOne = await (await client(one!)).receiver(`queue://${queue}`, { credit_window: 5 });
    const onTwo = await (await client(two!)).receiver(`queue://${queue}`, { credit_window: 5 });
    await send(one!, `queue://${queue}`, bodies('a', 30));
    await send(two!, `queue://${queue}`, bodies('b', 30));
    await until('60 messages arrived', () => onOne.inbox.length + onTwo.inbox.length >= 60);
    await sleep(200);
    const all = [...onOne.bodies(), ...onTwo.bodies()];
    expect(all).toHaveLength(60);
    expect(new Set(all).size).toBe(60);
    expect(onOne.inbox.length).toBeGreaterThan(0);
    expect(onTwo.inbox.length).toBeGreaterThan(0);
  });

  it('relays a long stream to a consumer on another broker, each message once', async () => {
    const [one, two] = await brokers(1, 2);
    const queue = queueOwnedBy(2, [1, 2], 'stream');
    const consumer = await (await client(one!)).receiver(`queue://${queue}`);
    const sender = await (await client(two!)).sender(`queue://${queue}`);
    const count = 5000;
    // More than the link's credit and the relay's window many times over: both must be given back.
    await Promise.all(Array.from({ length: count }, (_, i) => sender.send({ body: `s-${i}` }, 30_000)));
    await consumer.waitFor(count, 30_000);
    await sleep(200);
    expect(consumer.inbox).toHaveLength(count);
    expect(new Set(consumer.bodies()).size).toBe(count);
  });

  it('takes outcomes from a consumer on another broker: released is given again, accepted is done', async () => {
    const [one, two] = await brokers(1, 2);
    const queue = queueOwnedBy(2, [1, 2], 'outcomes');
    await send(two!, `queue://${queue}`, ['first', 'second']);
    const relayedClient = await client(one!);
    const relayed = await relayedClient.receiver(`queue://${queue}`, { autoaccept: false, credit_window: 0 });
    relayed.link.add_credit(1);
    await relayed.waitFor(1);
    await sleep(100);
    expect(relayed.bodies()).toEqual(['first']);
    relayed.inbox[0]!.delivery.accept();
    relayed.link.add_credit(1);
    await relayed.waitFor(2);
    expect(relayed.bodies()).toEqual(['first', 'second']);
    relayed.inbox[1]!.delivery.release();
    relayed.link.add_credit(1);
    // Released: the queue's owner gives it again, here to the same (only) consumer.
    await relayed.waitFor(3);
    expect(relayed.bodies()[2]).toBe('second');
    // The first was accepted through broker 1: a consumer on broker 2 gets only the second.
    relayed.link.close();
    const local = await (await client(two!)).receiver(`queue://${queue}`);
    await local.waitFor(1);
    await sleep(200);
    expect(local.bodies()).toEqual(['second']);
  });

  it('keeps an unsettled message of a consumer whose broker stops for the others', async () => {
    const [one, two] = await brokers(1, 2);
    const queue = queueOwnedBy(2, [1, 2], 'held');
    await send(two!, `queue://${queue}`, ['only']);
    const relayed = await (await client(one!)).receiver(`queue://${queue}`, { autoaccept: false });
    await relayed.waitFor(1);
    await one!.stop();
    const local = await (await client(two!)).receiver(`queue://${queue}`);
    const [again] = await local.waitFor(1);
    expect(again!.message.body).toBe('only');
    expect(again!.message.delivery_count).toBe(1);
  });

  it('moves a queue to a broker that joins, without giving again what was accepted', async () => {
    const [one, two] = await brokers(1, 2);
    const queue = queueOwnedBy(3, [1, 2, 3], 'moving');
    const before = rendezvousOwner(queue, [1, 2]);
    const consumerBroker = before === 1 ? two! : one!;
    const consumer = await (await client(consumerBroker)).receiver(`queue://${queue}`);
    await send(one!, `queue://${queue}`, bodies('before', 10));
    await consumer.waitFor(10);
    await sleep(300); // the accepts reach the owner
    const three = await startBroker(3);
    await sleep(100);
    await send(three, `queue://${queue}`, bodies('after', 10));
    await until('the messages sent after the move arrived', () => consumer.inbox.length >= 20);
    await sleep(300);
    expect(consumer.bodies()).toEqual([...bodies('before', 10), ...bodies('after', 10)]);
  });

  it('lets a consumer on another broker take over a queue whose owner stopped', async () => {
    const [one, two] = await brokers(1, 2);
    const queue = queueOwnedBy(1, [1, 2], 'orphan');
    const consumer = await (await client(two!)).receiver(`queue://${queue}`);
    await send(two!, `queue://${queue}`, ['while-owned']);
    await consumer.waitFor(1);
    await sleep(300);
    await one!.stop();
    await send(two!, `queue://${queue}`, ['after-stop']);
    await until('the message sent after the owner stopped arrived', () => consumer.inbox.length >= 2);
    await sleep(200);
    expect(consumer.bodies()).toEqual(['while-owned', 'after-stop']);
  });

  it('delivers to a temporary (reply-to) address made on another broker', async () => {
    const [one, two] = await brokers(1, 2);
    const requester = await client(one!);
    const replies: TestReceiver = await requester.receiver({ dynamic: true });
    const replyTo = (replies.link.source as { address: string }).address;
    expect(replyTo).toMatch(/^amqp-tmp-1-/);
    await send(two!, replyTo, ['reply']);
    await replies.waitFor(1);
    expect(replies.bodies()).toEqual(['reply']);
    replies.link.close();
    await sleep(100);
    // Gone with its link: broker 2 says so.
    const sender = await (await client(two!)).sender(replyTo);
    const late = await sender.send({ body: 'late' });
    expect(late.outcome).toBe('rejected');
    expect((late.state as { error: { condition: string } }).error.condition).toBe('amqp:not-found');
  });

  it('steals a link its container attaches again on another broker, and only the older one', async () => {
    const [a, b] = await brokers(1, 2);
    const connect = async (broker: Broker, containerId: string) => {
      const connected = await TestClient.connect(broker.port, { container_id: containerId });
      clients.push(connected);
      return connected;
    };
    const old = await (await connect(a!, 'moving-app')).receiver('queue://moved-link', { name: 'orders-in' });
    const other = await (
      await connect(a!, 'other-app')
    ).receiver('queue://moved-link-2', { name: 'orders-in' });
    await sleep(20);
    const taker = await (
      await connect(b!, 'moving-app')
    ).receiver('queue://moved-link', { name: 'orders-in' });
    expect(await old.waitClosed(2000)).toMatchObject({ condition: 'amqp:link:stolen' });
    // The taker, the later attachment, stays; so does another container's link of that name.
    await sleep(200);
    expect(taker.closedWith).toBeNull();
    expect(other.closedWith).toBeNull();
    await send(a!, 'queue://moved-link', ['after']);
    await taker.waitFor(1);
    expect(taker.bodies()).toEqual(['after']);
  });
});
