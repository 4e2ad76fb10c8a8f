import { TopicCatalog } from '@robustmq/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { TestClient } from './helpers/rhea-client.js';

// An address's topic deleted through another protocol or the admin API (here: the node's catalog,
// as Kafka's DeleteTopics uses it): its links are detached with amqp:resource-deleted, as RabbitMQ
// does for a deleted queue, and the next attach makes the address again, empty.

type Broker = Awaited<ReturnType<typeof startInProcess>>;

let broker: Broker;
const clients: TestClient[] = [];

async function client(): Promise<TestClient> {
  const c = await TestClient.connect(broker.port);
  clients.push(c);
  return c;
}

beforeEach(async () => {
  broker = await startInProcess();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await broker.stop();
});

const deleteTopic = (name: string) => new TopicCatalog(broker.meta, broker.storage).delete(name);

describe('an address whose topic is deleted', () => {
  it('has its links detached with amqp:resource-deleted; attached again, it is made anew, empty', async () => {
    const c = await client();
    const sender = await c.sender('queue://orders');
    // A consumer that takes nothing yet, so the message stays in the queue.
    const idle = await c.receiver('queue://orders', { credit_window: 0 });
    expect((await sender.send({ body: 'old' })).outcome).toBe('accepted');
    expect(await deleteTopic('orders')).toBe(true);
    expect(await sender.waitClosed()).toMatchObject({ condition: 'amqp:resource-deleted' });
    expect(await idle.waitClosed()).toMatchObject({ condition: 'amqp:resource-deleted' });

    const again = await c.sender('queue://orders');
    expect((await again.send({ body: 'new' })).outcome).toBe('accepted');
    const receiver = await c.receiver('queue://orders');
    await receiver.waitFor(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.bodies()).toEqual(['new']);
  });

  it('takes messages to it through the anonymous relay again once a message has found it gone', async () => {
    const c = await client();
    const relay = await c.sender(null);
    expect((await relay.send({ to: 'queue://relayed', body: 'before' })).outcome).toBe('accepted');
    expect(await deleteTopic('relayed')).toBe(true);
    const outcomes: string[] = [];
    for (let i = 0; i < 3 && outcomes.at(-1) !== 'accepted'; i++) {
      outcomes.push((await relay.send({ to: 'queue://relayed', body: 'after' })).outcome);
    }
    // At most the first, sent before the broker made the address again, is released.
    expect(outcomes.at(-1)).toBe('accepted');
    expect(outcomes.length).toBeLessThanOrEqual(2);
    const receiver = await c.receiver('queue://relayed');
    await receiver.waitFor(1);
    expect(receiver.bodies()).toEqual(['after']);
  });

  it('ends only the sending link of a client still writing, not its session (rhea writes what it queued after its detach)', async () => {
    const c = await client();
    const other = await c.receiver('queue://other');
    const link = c.connection.open_sender({ target: { address: 'queue://flood' } });
    let closed: unknown = null;
    link.on('sender_close', (context) => {
      closed = (context.sender?.error as unknown) ?? {};
    });
    link.on('sender_error', () => {});
    await new Promise<void>((resolve) => link.once('sender_open', () => resolve()));
    let sending = true;
    const flood = (async () => {
      for (let i = 0; sending; i++) {
        if (link.sendable()) link.send({ body: `m${i}` });
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await deleteTopic('flood')).toBe(true);
    for (let i = 0; i < 200 && closed === null; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    sending = false;
    await flood;
    expect(closed).toMatchObject({ condition: 'amqp:resource-deleted' });
    // The session and its other link go on.
    const elsewhere = await client();
    const sender = await elsewhere.sender('queue://other');
    expect((await sender.send({ body: 'still here' })).outcome).toBe('accepted');
    expect((await other.waitFor(1)).map((r) => r.message.body as unknown)).toEqual(['still here']);
    expect(other.closedWith).toBeNull();
  });
});
