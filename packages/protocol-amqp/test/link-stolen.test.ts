import type { Socket } from 'node:net';
import type { Receiver, ReceiverOptions, Sender, SenderOptions, Session } from 'rhea';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { TestClient, TestReceiver, TestSender } from './helpers/rhea-client.js';

let broker: Awaited<ReturnType<typeof startInProcess>>;
const clients: TestClient[] = [];

beforeEach(async () => {
  broker = await startInProcess();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await broker.stop();
});

async function client(containerId: string, options: Record<string, unknown> = {}): Promise<TestClient> {
  const c = await TestClient.connect(broker.port, { container_id: containerId, ...options });
  clients.push(c);
  return c;
}

function opened(link: Sender | Receiver): Promise<void> {
  const event = link.is_sender() ? 'sender_open' : 'receiver_open';
  return new Promise((resolve) => link.once(event, () => resolve()));
}

async function receiverOn(session: Session, address: string, options: Partial<ReceiverOptions>) {
  const link = session.open_receiver({ source: { address }, autoaccept: true, ...options });
  const receiver = new TestReceiver(link);
  await opened(link);
  return receiver;
}

async function senderOn(session: Session, address: string, options: Partial<SenderOptions>) {
  const link = session.open_sender({ target: { address }, ...options });
  const sender = new TestSender(link);
  await opened(link);
  return sender;
}

/** A few round trips to the broker, after which a detach it sent would have arrived. */
async function roundTrip(c: TestClient): Promise<void> {
  const probe = await c.sender('topic://stolen-probe');
  await probe.send({ body: 'probe' });
  probe.link.close();
}

describe('link stealing (AMQP 1.0 section 2.6.1: one attachment per name and container pair)', () => {
  it('detaches a receiving link with amqp:link:stolen when its container attaches the name on another connection', async () => {
    const first = await client('stealing-app');
    const second = await client('stealing-app');
    const old = await first.receiver('queue://stolen-consumer', { name: 'orders-in' });
    const taker = await second.receiver('queue://stolen-consumer', { name: 'orders-in' });
    const stolen = await old.waitClosed(2000);
    expect(stolen.condition).toBe('amqp:link:stolen');
    expect(stolen.description).toContain('orders-in');
    const producer = await (await client('producer-app')).sender('queue://stolen-consumer');
    for (const body of ['one', 'two']) expect((await producer.send({ body })).outcome).toBe('accepted');
    await taker.waitFor(2);
    expect(taker.bodies()).toEqual(['one', 'two']);
    expect(old.inbox).toEqual([]);
    expect(taker.closedWith).toBeNull();
    expect(first.connection.is_open()).toBe(true);
  });

  it('detaches a sending link with amqp:link:stolen when its container attaches the name on another connection', async () => {
    const first = await client('stealing-producer');
    const second = await client('stealing-producer');
    const old = await first.sender('queue://stolen-producer', { name: 'orders-out' });
    const taker = await second.sender('queue://stolen-producer', { name: 'orders-out' });
    expect(await old.waitClosed(2000)).toMatchObject({ condition: 'amqp:link:stolen' });
    expect((await taker.send({ body: 'after' })).outcome).toBe('accepted');
    const consumer = await (await client('consumer-app')).receiver('queue://stolen-producer');
    await consumer.waitFor(1);
    expect(consumer.bodies()).toEqual(['after']);
    expect(taker.closedWith).toBeNull();
    expect(first.connection.is_open()).toBe(true);
  });

  it('steals between two sessions of one connection', async () => {
    const c = await client('two-sessions');
    const one = c.connection.create_session();
    const two = c.connection.create_session();
    one.begin();
    two.begin();
    const old = await receiverOn(one, 'queue://stolen-sessions', { name: 'per-session' });
    const oldSender = await senderOn(one, 'queue://stolen-sessions', { name: 'per-session' });
    const taker = await receiverOn(two, 'queue://stolen-sessions', { name: 'per-session' });
    expect(await old.waitClosed(2000)).toMatchObject({ condition: 'amqp:link:stolen' });
    // The sender of that name is another link (the other direction): it stays.
    expect((await oldSender.send({ body: 'kept' })).outcome).toBe('accepted');
    await taker.waitFor(1);
    expect(taker.bodies()).toEqual(['kept']);
    expect(oldSender.closedWith).toBeNull();
    const takerSender = await senderOn(two, 'queue://stolen-sessions', { name: 'per-session' });
    expect(await oldSender.waitClosed(2000)).toMatchObject({ condition: 'amqp:link:stolen' });
    expect((await takerSender.send({ body: 'again' })).outcome).toBe('accepted');
    await taker.waitFor(2);
    expect(c.connection.is_open()).toBe(true);
  });

  it('does not steal between different containers, nor between users of one container-id', async () => {
    const a = await client('container-a');
    const b = await client('container-b');
    const alice = await client('container-a', { username: 'alice', password: 'secret-pw' });
    const receivers = [
      await a.receiver('queue://not-stolen', { name: 'same-name' }),
      await b.receiver('queue://not-stolen', { name: 'same-name' }),
      await alice.receiver('queue://not-stolen', { name: 'same-name' }),
    ];
    const senders = [
      await a.sender('queue://not-stolen', { name: 'same-name' }),
      await b.sender('queue://not-stolen', { name: 'same-name' }),
      await alice.sender('queue://not-stolen', { name: 'same-name' }),
    ];
    for (const [i, sender] of senders.entries())
      expect((await sender.send({ body: `m${i}` })).outcome).toBe('accepted');
    await roundTrip(a);
    await roundTrip(b);
    await roundTrip(alice);
    for (const link of [...receivers, ...senders]) expect(link.closedWith).toBeNull();
    const deadline = Date.now() + 2000;
    while (receivers.reduce((n, r) => n + r.inbox.length, 0) < 3 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(receivers.flatMap((r) => r.bodies()).sort()).toEqual(['m0', 'm1', 'm2']);
  });

  it('gives a message the stolen receiver held unsettled to the new one', async () => {
    const producer = await (await client('held-producer')).sender('queue://stolen-held');
    expect((await producer.send({ body: 'held' })).outcome).toBe('accepted');
    const first = await client('held-app');
    const old = await first.receiver('queue://stolen-held', { name: 'holder', autoaccept: false });
    await old.waitFor(1);
    const second = await client('held-app');
    const taker = await second.receiver('queue://stolen-held', { name: 'holder' });
    expect(await old.waitClosed(2000)).toMatchObject({ condition: 'amqp:link:stolen' });
    const [again] = await taker.waitFor(1);
    expect(again!.message.body).toBe('held');
    expect(again!.message.delivery_count).toBe(1);
    expect(taker.inbox).toHaveLength(1);
  });

  it('lets the name attach again once the link that took it is gone', async () => {
    const first = await client('reattach-app');
    const old = await first.receiver('queue://stolen-again', { name: 'again' });
    const second = await client('reattach-app');
    const taker = await second.receiver('queue://stolen-again', { name: 'again' });
    expect(await old.waitClosed(2000)).toMatchObject({ condition: 'amqp:link:stolen' });
    await second.close();
    const third = await first.receiver('queue://stolen-again', { name: 'again' });
    const producer = await (await client('again-producer')).sender('queue://stolen-again');
    expect((await producer.send({ body: 'back' })).outcome).toBe('accepted');
    await third.waitFor(1);
    expect(third.bodies()).toEqual(['back']);
    expect(third.closedWith).toBeNull();
    expect(taker.inbox).toEqual([]);
  });

  it('forgets a name when its link detaches, its session ends or its connection is lost', async () => {
    const registry = () =>
      (broker.plugin as unknown as { broker: { attachedLinks: { size: number } } }).broker.attachedLinks;
    const c = await client('forgetting-app');
    const detached = await c.receiver('queue://forgotten', { name: 'detached' });
    const session = c.connection.create_session();
    session.begin();
    await receiverOn(session, 'queue://forgotten', { name: 'ended' });
    const lost = await client('forgetting-app');
    await lost.sender('queue://forgotten', { name: 'lost' });
    expect(registry().size).toBe(3);
    detached.link.close();
    session.close();
    (lost.connection as unknown as { socket: Socket }).socket.destroy();
    clients.splice(clients.indexOf(lost), 1);
    const deadline = Date.now() + 2000;
    while (registry().size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(registry().size).toBe(0);
  });
});
