import { TopicCatalog, type MetaStore, type RecordCompression } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import rhea from 'rhea';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compressionNoting, jsonCodec, memoryMeta, startInProcess } from './helpers/in-process.js';
import { TestClient } from './helpers/rhea-client.js';

type Broker = Awaited<ReturnType<typeof startInProcess>>;

let broker: Broker;
const clients: TestClient[] = [];

async function client(options = {}): Promise<TestClient> {
  const c = await TestClient.connect(broker.port, options);
  clients.push(c);
  return c;
}

beforeEach(async () => {
  broker = await startInProcess({ dead_letter_address: 'queue://DLQ' });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await broker.stop();
});

describe('queues', () => {
  it('stores a message, then delivers it to a consumer with its properties and annotations', async () => {
    const c = await client();
    const sender = await c.sender('queue://orders');
    const result = await sender.send({
      body: 'hello',
      message_id: 'm-1',
      subject: 'greeting',
      application_properties: { region: 'eu', count: 3 },
      message_annotations: { 'x-opt-tag': 'a' },
      durable: true,
    });
    expect(result.outcome).toBe('accepted');
    const receiver = await c.receiver('queue://orders');
    const [got] = await receiver.waitFor(1);
    expect(got!.message.body).toBe('hello');
    expect(got!.message.message_id).toBe('m-1');
    expect(got!.message.subject).toBe('greeting');
    expect(got!.message.application_properties).toEqual({ region: 'eu', count: 3 });
    expect(got!.message.message_annotations).toEqual({ 'x-opt-tag': 'a' });
    expect(got!.message.durable).toBe(true);
    const stored = broker.router.published[0]!.message;
    expect(Buffer.from(stored.payload).toString()).toBe('hello');
    expect(stored.topic).toBe('orders');
    expect(stored.headers.find((h) => h.key === 'region')?.value).toEqual(Buffer.from('eu'));
  });

  it("creates an address's topic through the node's topic catalog when the node shares one", async () => {
    const storage = new MemoryStorageEngine();
    const meta = memoryMeta();
    const topics = new TopicCatalog(meta, storage);
    const create = vi.spyOn(topics, 'create');
    const node = await startInProcess({}, { storage, meta, topics });
    try {
      const client = await TestClient.connect(node.port);
      const sender = await client.sender('queue://shared-catalog');
      await sender.send({ body: 'one' });
      await client.close();
      expect(create.mock.calls.map(([topic]) => topic.name)).toEqual(['shared-catalog']);
    } finally {
      await node.stop();
    }
  });

  it('takes and delivers messages larger than a frame, and many in a row in order, each once', async () => {
    // Small frames both ways: the big message crosses as many transfers to and from the broker.
    const c = await client({ max_frame_size: 16_384 });
    const sender = await c.sender('queue://big');
    const big = Buffer.alloc(200_000, 7);
    big.write('first', 0);
    expect((await sender.send({ body: rhea.message.data_section(big) })).outcome).toBe('accepted');
    const sends = Array.from({ length: 300 }, (_, i) => sender.send({ body: `m${i}` }));
    expect((await Promise.all(sends)).every((r) => r.outcome === 'accepted')).toBe(true);
    const receiver = await c.receiver('queue://big');
    const got = await receiver.waitFor(301);
    expect(Buffer.from((got[0]!.message.body as { content: Buffer }).content)).toEqual(big);
    expect(got.slice(1).map((r) => r.message.body as unknown)).toEqual(
      Array.from({ length: 300 }, (_, i) => `m${i}`),
    );
    // Every delivery was settled once: nothing is left unsettled or delivered again.
    const resources = broker.plugin.adminResources();
    await expect
      .poll(async () => (await resources.queues!.list({ limit: 10 })).items)
      .toContainEqual({ id: 'big', kind: 'queue', depth: 0, consumers: 1, unsettled: 0 });
    expect(receiver.inbox).toHaveLength(301);
  });

  it('hands each message to one of several competing consumers', async () => {
    const c = await client();
    const a = await c.receiver('queue://work');
    const b = await c.receiver('queue://work');
    const sender = await c.sender('queue://work');
    for (let i = 0; i < 20; i++) await sender.send({ body: `job-${i}` });
    const deadline = Date.now() + 5000;
    while (a.inbox.length + b.inbox.length < 20 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const all = [...a.bodies(), ...b.bodies()].sort();
    expect(all).toHaveLength(20);
    expect(new Set(all).size).toBe(20);
    expect(a.inbox.length).toBeGreaterThan(0);
    expect(b.inbox.length).toBeGreaterThan(0);
  });

  it('delivers nothing without credit, and as much as the credit given', async () => {
    const c = await client();
    const sender = await c.sender('queue://credit');
    for (let i = 0; i < 5; i++) await sender.send({ body: i });
    const receiver = await c.receiver('queue://credit', { credit_window: 0 });
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.inbox).toHaveLength(0);
    receiver.link.add_credit(2);
    await receiver.waitFor(2);
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.inbox).toHaveLength(2);
    receiver.link.add_credit(10);
    await receiver.waitFor(5);
    expect(receiver.bodies()).toEqual([0, 1, 2, 3, 4]);
  });

  it('takes pre-settled sends and sends pre-settled to a consumer that asks (at-most-once)', async () => {
    const c = await client();
    const sender = await c.sender('queue://fire-and-forget', { snd_settle_mode: 1 });
    await expect.poll(() => sender.link.sendable()).toBe(true);
    for (let i = 0; i < 3; i++) sender.link.send({ body: i });
    const receiver = await c.receiver('queue://fire-and-forget', { snd_settle_mode: 1, autoaccept: false });
    const got = await receiver.waitFor(3);
    expect(receiver.bodies()).toEqual([0, 1, 2]);
    expect(got.every((r) => r.delivery.remote_settled)).toBe(true);
    const queues = broker.plugin.adminResources().queues!;
    await expect.poll(async () => (await queues.get('fire-and-forget'))?.depth).toBe(0);
  });

  it('drains: with nothing to send the broker gives the credit back', async () => {
    const c = await client();
    const receiver = await c.receiver('queue://drain', { credit_window: 0 });
    receiver.link.add_credit(5);
    const drained = new Promise<void>((resolve) => receiver.link.once('receiver_drained', () => resolve()));
    receiver.link.drain_credit();
    await drained;
    expect((receiver.link as unknown as { credit: number }).credit).toBe(0);
  });

  it('drains: a drain asked for as the link attaches first gets what the queue holds (AMQP 1.0 section 2.6.7)', async () => {
    const c = await client();
    const sender = await c.sender('queue://drain-early');
    for (const body of ['a', 'b', 'c']) await sender.send({ body });
    // As Qpid JMS's receiveNoWait does: attach, then at once credit with drain set, before the
    // broker has answered the attach.
    const link = c.connection.open_receiver({ source: { address: 'queue://drain-early' }, credit_window: 0 });
    const received: unknown[] = [];
    link.on('message', (context) => received.push(context.message!.body));
    const drained = new Promise<number>((resolve) =>
      link.once('receiver_drained', () => resolve(received.length)),
    );
    link.drain = true;
    link.add_credit(5);
    expect(await drained).toBe(3);
    expect(received).toEqual(['a', 'b', 'c']);
    expect((link as unknown as { credit: number }).credit).toBe(0);
  });

  it('drains: when the messages use all the credit, a flow with drain set still ends the drain (AMQP 1.0 section 2.6.7)', async () => {
    const c = await client();
    const sender = await c.sender('queue://drain-used-up');
    for (const body of ['a', 'b', 'c', 'd', 'e']) await sender.send({ body });
    const receiver = await c.receiver('queue://drain-used-up', { credit_window: 0 });
    const drained = new Promise<number>((resolve) =>
      receiver.link.once('receiver_drained', () => resolve(receiver.inbox.length)),
    );
    receiver.link.drain = true;
    receiver.link.add_credit(3);
    expect(await drained).toBe(3);
    expect(receiver.bodies()).toEqual(['a', 'b', 'c']);
    expect((receiver.link as unknown as { credit: number }).credit).toBe(0);
    // Nothing more comes for the drained link; the rest wait for the next credit.
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.inbox).toHaveLength(3);
    receiver.link.drain = false;
    receiver.link.add_credit(5);
    await receiver.waitFor(5);
    expect(receiver.bodies()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('drains: messages waiting for the queue to save what it delivers go out before the credit is given back', async () => {
    // A slow meta store: deliveries past what the queue saved as possibly delivered wait for it.
    const base = memoryMeta();
    const slow = await startInProcess(
      {},
      {
        meta: {
          ...base,
          put: (...args: Parameters<MetaStore['put']>) =>
            new Promise<void>((resolve) => setTimeout(resolve, 50)).then(() => base.put(...args)),
        },
      },
    );
    try {
      const c = await TestClient.connect(slow.port);
      try {
        const sender = await c.sender('queue://drain-saving');
        const count = 600;
        await Promise.all(Array.from({ length: count }, (_, i) => sender.send({ body: i })));
        const receiver = await c.receiver('queue://drain-saving', { credit_window: 0 });
        const drained = new Promise<number>((resolve) =>
          receiver.link.once('receiver_drained', () => resolve(receiver.inbox.length)),
        );
        receiver.link.drain = true;
        receiver.link.add_credit(count + 10);
        expect(await drained).toBe(count);
        expect(receiver.bodies()).toEqual(Array.from({ length: count }, (_, i) => i));
      } finally {
        await c.close();
      }
    } finally {
      await slow.stop();
    }
  });

  it('drains: a drain asked for with no credit is answered with a flow with drain set', async () => {
    const c = await client();
    const receiver = await c.receiver('queue://drain-no-credit', { credit_window: 0 });
    const drained = new Promise<void>((resolve) => receiver.link.once('receiver_drained', () => resolve()));
    receiver.link.drain_credit();
    await drained;
    expect((receiver.link as unknown as { credit: number }).credit).toBe(0);
  });

  it('drains: messages waiting for room on the socket go out before the credit is given back (AMQP 1.0 section 2.6.7)', async () => {
    const small = await startInProcess({ max_outgoing_bytes: 1024 });
    const producer = await TestClient.connect(small.port);
    const consumer = await TestClient.connect(small.port);
    try {
      const receiver = await consumer.receiver('queue://drain-full-socket', { credit_window: 0 });
      const socket = (consumer.connection as unknown as { socket: { pause(): void; resume(): void } }).socket;
      socket.pause();
      // More than the kernel's socket buffers hold (about 4 MiB here) while the consumer does not
      // read: the broker sends as they come until its socket is over max_outgoing_bytes, then the
      // rest wait in the queue.
      const count = 160;
      receiver.link.add_credit(count + 40);
      const sender = await producer.sender('queue://drain-full-socket');
      const body = rhea.message.data_section(Buffer.alloc(64 * 1024, 1));
      for (let i = 0; i < count; i++)
        expect((await sender.send({ body, message_id: i })).outcome).toBe('accepted');
      const links = small.plugin.adminResources().links!;
      const sent = async () =>
        (await links.list({ limit: 10 })).items.find((l) => l.role === 'sender')?.unsettled as number;
      let last = -1;
      while ((await sent()) !== last) {
        last = await sent();
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(last).toBeGreaterThan(0);
      expect(last).toBeLessThan(count);
      const queues = small.plugin.adminResources().queues!;
      const drained = new Promise<number>((resolve) =>
        receiver.link.once('receiver_drained', () => resolve(receiver.inbox.length)),
      );
      receiver.link.drain_credit();
      await new Promise((r) => setTimeout(r, 200));
      socket.resume();
      // Every message first, then the 40 credits left over given back.
      expect(await drained).toBe(count);
      expect(receiver.inbox.map((r) => r.message.message_id)).toEqual(
        Array.from({ length: count }, (_, i) => i),
      );
      expect((receiver.link as unknown as { credit: number }).credit).toBe(0);
      await expect.poll(async () => (await queues.get('drain-full-socket'))?.depth).toBe(0);
    } finally {
      await producer.close();
      await consumer.close();
      await small.stop();
    }
  }, 30_000);

  it('goes on delivering once the socket has written what held deliveries back at max_outgoing_bytes, without a flow from the consumer', async () => {
    const small = await startInProcess({ max_outgoing_bytes: 1024 });
    const producer = await TestClient.connect(small.port);
    const consumer = await TestClient.connect(small.port);
    try {
      // Credit given once, and no outcomes: nothing from the consumer wakes the broker's link.
      const receiver = await consumer.receiver('queue://slow-reader', {
        credit_window: 0,
        autoaccept: false,
      });
      const socket = (consumer.connection as unknown as { socket: { pause(): void; resume(): void } }).socket;
      socket.pause();
      // Each message goes out on its own as it arrives, in a write under the 16 KiB past which Node's
      // socket emits 'drain'; more than the kernel's socket buffers hold while the consumer does not
      // read, so the last writes wait in the broker's socket and the rest in the queue.
      const count = 800;
      receiver.link.add_credit(count);
      const sender = await producer.sender('queue://slow-reader');
      const body = rhea.message.data_section(Buffer.alloc(8 * 1024, 1));
      for (let i = 0; i < count; i++)
        expect((await sender.send({ body, message_id: i })).outcome).toBe('accepted');
      const links = small.plugin.adminResources().links!;
      const sent = async () =>
        (await links.list({ limit: 10 })).items.find((l) => l.role === 'sender')?.unsettled as number;
      let last = -1;
      while ((await sent()) !== last) {
        last = await sent();
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(last).toBeLessThan(count);
      socket.resume();
      // At once: not on the queue's next look for new messages (every 5 s while it waits for them).
      await receiver.waitFor(count, 2000);
      expect(receiver.inbox.map((r) => r.message.message_id)).toEqual(
        Array.from({ length: count }, (_, i) => i),
      );
    } finally {
      await producer.close();
      await consumer.close();
      await small.stop();
    }
  }, 30_000);

  it("keeps to a consumer's max-message-size: a larger message detaches the link and waits for another consumer", async () => {
    const c = await client();
    const sender = await c.sender('queue://bounded-consumer');
    await sender.send({ body: 'x'.repeat(3000) });
    await sender.send({ body: 'small' });
    // AMQP 1.0 section 2.7.3: delivering a message over the link's max-message-size is a link error.
    const bounded = await c.receiver('queue://bounded-consumer', { max_message_size: 1000 });
    const error = await bounded.waitClosed();
    expect(error.condition).toBe('amqp:link:message-size-exceeded');
    expect(bounded.inbox).toEqual([]);
    const other = await c.receiver('queue://bounded-consumer');
    const got = await other.waitFor(2);
    expect(got.map((r) => String(r.message.body).length)).toEqual([3000, 5]);
    // It was never delivered: no failed delivery is counted.
    expect(got[0]!.message.delivery_count ?? 0).toBe(0);
  });

  it('redelivers released messages and counts failed deliveries for modified', async () => {
    const c = await client();
    const sender = await c.sender('queue://retry');
    await sender.send({ body: 'again' });
    const receiver = await c.receiver('queue://retry', { autoaccept: false });
    const [first] = await receiver.waitFor(1);
    first!.delivery.release();
    const [, second] = await receiver.waitFor(2);
    expect(second!.message.body).toBe('again');
    expect(second!.message.delivery_count ?? 0).toBe(0);
    second!.delivery.modified({ delivery_failed: true });
    const [, , third] = await receiver.waitFor(3);
    expect(third!.message.delivery_count).toBe(1);
    third!.delivery.accept();
  });

  it('adds the failed deliveries here to the delivery-count the message came with (AMQP 1.0 section 3.2.1)', async () => {
    const c = await client();
    const sender = await c.sender('queue://counted');
    // As another intermediary passes a message on after two failed deliveries there.
    await sender.send({ body: 'tried before', delivery_count: 2, durable: true });
    const receiver = await c.receiver('queue://counted', { autoaccept: false });
    const [first] = await receiver.waitFor(1);
    expect(first!.message.delivery_count).toBe(2);
    first!.delivery.release();
    const [, second] = await receiver.waitFor(2);
    // Released: not a failed delivery.
    expect(second!.message.delivery_count).toBe(2);
    second!.delivery.modified({ delivery_failed: true });
    const [, , third] = await receiver.waitFor(3);
    expect(third!.message.delivery_count).toBe(3);
    expect(third!.message.durable).toBe(true);
    // Its link goes away with it unsettled: another failed delivery.
    receiver.link.close();
    await new Promise((r) => receiver.link.once('receiver_close', r));
    const next = await c.receiver('queue://counted');
    const [fourth] = await next.waitFor(1);
    expect(fourth!.message.body).toBe('tried before');
    expect(fourth!.message.delivery_count).toBe(4);
  });

  it('sends a message given again as not its first acquirer: released, modified, or its link gone (AMQP 1.0 section 3.2.1)', async () => {
    const c = await client();
    const sender = await c.sender('queue://acquired');
    await sender.send({ body: 'once', first_acquirer: true, durable: true });
    const receiver = await c.receiver('queue://acquired', { autoaccept: false });
    const [first] = await receiver.waitFor(1);
    // Its first delivery: no link has acquired it, as the producer said.
    expect(first!.message.first_acquirer).toBe(true);
    first!.delivery.release();
    const [, second] = await receiver.waitFor(2);
    expect(second!.message.first_acquirer).toBe(false);
    second!.delivery.modified({ delivery_failed: false });
    const [, , third] = await receiver.waitFor(3);
    expect(third!.message.first_acquirer).toBe(false);
    expect(third!.message.durable).toBe(true);
    receiver.link.close();
    await new Promise((r) => receiver.link.once('receiver_close', r));
    const next = await c.receiver('queue://acquired');
    const [fourth] = await next.waitFor(1);
    expect(fourth!.message.body).toBe('once');
    expect(fourth!.message.first_acquirer).toBe(false);
    expect(fourth!.message.delivery_count).toBe(1);
  });

  it('sends the ttl that remains of the time the message waited, and absolute-expiry-time as it came (AMQP 1.0 section 3.2.1)', async () => {
    const c = await client();
    const sender = await c.sender('queue://ageing');
    const expiry = new Date(Date.now() + 60_000);
    await sender.send({ body: 'first', ttl: 10_000, absolute_expiry_time: expiry });
    await sender.send({ body: 'second', ttl: 10_000, durable: true, delivery_count: 1 });
    await sender.send({ body: 'no ttl', durable: true });
    await new Promise((r) => setTimeout(r, 500));
    const receiver = await c.receiver('queue://ageing', { autoaccept: false });
    const got = await receiver.waitFor(3);
    const [first, second, plain] = got.map((r) => r.message);
    // Held here for half a second or more: that much less is left of it.
    expect(first!.ttl).toBeGreaterThan(5_000);
    expect(first!.ttl).toBeLessThanOrEqual(9_500);
    expect(first!.absolute_expiry_time).toEqual(expiry);
    expect(second!.ttl).toBeLessThanOrEqual(9_500);
    expect(second!.durable).toBe(true);
    expect(second!.delivery_count).toBe(1);
    expect(plain!.ttl).toBeUndefined();
    // Delivered again later, less again.
    const waited = first!.ttl!;
    await new Promise((r) => setTimeout(r, 200));
    got[0]!.delivery.release();
    const [, , , again] = await receiver.waitFor(4);
    expect(again!.message.body).toBe('first');
    expect(again!.message.ttl).toBeLessThanOrEqual(waited - 200);
    expect(again!.message.absolute_expiry_time).toEqual(expiry);
  });

  it('sends a message refused with undeliverable-here to another consumer', async () => {
    const c = await client();
    const sender = await c.sender('queue://picky');
    const a = await c.receiver('queue://picky', { autoaccept: false });
    await sender.send({ body: 'not for a' });
    const [got] = await a.waitFor(1);
    const b = await c.receiver('queue://picky');
    got!.delivery.modified({ undeliverable_here: true });
    await b.waitFor(1);
    expect(b.bodies()).toEqual(['not for a']);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.inbox).toHaveLength(1);
  });

  it('moves rejected messages to the dead-letter address', async () => {
    const c = await client();
    const sender = await c.sender('queue://fragile');
    await sender.send({ body: 'poison' });
    const receiver = await c.receiver('queue://fragile', { autoaccept: false });
    const [got] = await receiver.waitFor(1);
    got!.delivery.reject({ condition: 'app:bad', description: 'cannot parse' });
    const dlq = await c.receiver('queue://DLQ');
    const [dead] = await dlq.waitFor(1);
    expect(dead!.message.body).toBe('poison');
  });

  it('gives unsettled messages of a consumer that goes away to another', async () => {
    const c1 = await client();
    const c2 = await client();
    const sender = await c1.sender('queue://handover');
    for (let i = 0; i < 3; i++) await sender.send({ body: i });
    const first = await c2.receiver('queue://handover', { autoaccept: false });
    await first.waitFor(3);
    const second = await c1.receiver('queue://handover');
    await c2.close();
    await second.waitFor(3);
    expect(second.bodies()).toEqual([0, 1, 2]);
    expect(second.inbox[0]!.message.delivery_count).toBe(1);
  });

  it('gives unsettled messages of a link that detaches to the next consumer', async () => {
    const c = await client();
    const sender = await c.sender('queue://detach');
    await sender.send({ body: 'held' });
    const first = await c.receiver('queue://detach', { autoaccept: false });
    await first.waitFor(1);
    first.link.close();
    const second = await c.receiver('queue://detach');
    const [again] = await second.waitFor(1);
    expect(again!.message.body).toBe('held');
    expect(again!.message.delivery_count).toBe(1);
  });

  it('does not deliver expired messages', async () => {
    const c = await client();
    const sender = await c.sender('queue://ttl');
    await sender.send({ body: 'short', ttl: 50 });
    await sender.send({ body: 'long', ttl: 60_000 });
    await new Promise((r) => setTimeout(r, 120));
    const receiver = await c.receiver('queue://ttl');
    await receiver.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.bodies()).toEqual(['long']);
  });

  it('delivers higher priority first within a queue', async () => {
    const c = await client();
    const sender = await c.sender('queue://prio');
    await sender.send({ body: 'low', priority: 1 });
    await sender.send({ body: 'normal' });
    await sender.send({ body: 'high', priority: 9 });
    const receiver = await c.receiver('queue://prio');
    await receiver.waitFor(3);
    expect(receiver.bodies()).toEqual(['high', 'normal', 'low']);
  });

  it('keeps unsettled messages across a restart and does not redeliver accepted ones', async () => {
    const c = await client();
    const sender = await c.sender('queue://durable');
    for (let i = 0; i < 4; i++) await sender.send({ body: i, durable: true });
    const receiver = await c.receiver('queue://durable', { autoaccept: false });
    const got = await receiver.waitFor(4);
    got[0]!.delivery.accept();
    got[2]!.delivery.accept();
    await new Promise((r) => setTimeout(r, 100));
    await c.close();
    clients.length = 0;
    const { storage, meta } = broker;
    await broker.stop();
    broker = await startInProcess({}, { storage, meta });
    const again = await (await client()).receiver('queue://durable');
    await again.waitFor(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(again.bodies()).toEqual([1, 3]);
  });

  it('gives the messages a consumer held across a restart as delivered before, and only those (AMQP 1.0 section 3.2.1)', async () => {
    const c = await client();
    const sender = await c.sender('queue://held-across-restart');
    for (let i = 0; i < 4; i++) await sender.send({ body: i, durable: true, first_acquirer: true });
    const receiver = await c.receiver('queue://held-across-restart', { autoaccept: false, credit_window: 0 });
    receiver.link.add_credit(2);
    await receiver.waitFor(2);
    await c.close();
    clients.length = 0;
    const { storage, meta } = broker;
    await broker.stop();
    broker = await startInProcess({}, { storage, meta });
    const again = await (await client()).receiver('queue://held-across-restart');
    const got = await again.waitFor(4);
    expect(
      got.map(({ message }) => [
        message.body as unknown,
        message.delivery_count ?? 0,
        message.first_acquirer,
      ]),
    ).toEqual([
      [0, 1, false],
      [1, 1, false],
      [2, 0, true],
      [3, 0, true],
    ]);
  });
});

describe('records from other protocols', () => {
  it('delivers a record another protocol appended to the topic, as a data section', async () => {
    const c = await client();
    const receiver = await c.receiver('queue://mixed');
    await expect
      .poll(async () => (await broker.plugin.adminResources().queues!.get('mixed'))?.consumers)
      .toBe(1);
    const batch = await jsonCodec.encode([
      {
        topic: 'mixed',
        key: null,
        payload: Buffer.from('from kafka'),
        headers: [{ key: 'trace-id', value: Buffer.from('t-1') }],
        timestamp: Date.now(),
      },
    ]);
    await broker.storage.append('mixed/0', [batch]);
    const [got] = await receiver.waitFor(1);
    expect(Buffer.from((got!.message.body as { content: Buffer }).content).toString()).toBe('from kafka');
    expect(got!.message.application_properties).toEqual({ 'trace-id': 't-1' });
  });
});

describe('corrupt stored batches', () => {
  it('skips a batch that does not decode, counts it, and delivers the messages after it', async () => {
    const c = await client();
    const sender = await c.sender('queue://damaged');
    expect((await sender.send({ body: 'before' })).outcome).toBe('accepted');
    await broker.storage.append('damaged/0', [
      { recordCount: 2, maxTimestamp: Date.now(), data: Buffer.from('{not json') },
    ]);
    expect((await sender.send({ body: 'after' })).outcome).toBe('accepted');
    // The damaged batch came past the broker (as another protocol's would): the queue meets it
    // when it reads storage to get to 'after'.
    const receiver = await c.receiver('queue://damaged');
    await receiver.waitFor(2);
    expect(receiver.bodies()).toEqual(['before', 'after']);
    expect(broker.metrics.get('robustmq_amqp_messages_dropped_total', { reason: 'corrupt' })).toBe(2);
  });
});

describe('topics', () => {
  it('gives every subscriber a copy', async () => {
    const c = await client();
    const a = await c.receiver('topic://news');
    const b = await c.receiver('news', { source: { address: 'news', capabilities: ['topic'] } });
    const sender = await c.sender('topic://news');
    await sender.send({ body: 'extra' });
    await a.waitFor(1);
    await b.waitFor(1);
    expect(a.bodies()).toEqual(['extra']);
    expect(b.bodies()).toEqual(['extra']);
  });

  it('starts a subscription at the end: earlier messages are not replayed', async () => {
    const c = await client();
    const sender = await c.sender('topic://ticks');
    await sender.send({ body: 'before' });
    const a = await c.receiver('topic://ticks');
    await sender.send({ body: 'after' });
    await a.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.bodies()).toEqual(['after']);
  });
});

describe('request and reply', () => {
  it('replies over a dynamic address through the anonymous relay', async () => {
    const service = await client();
    const requests = await service.receiver('queue://rpc');
    const relay = await service.sender(null);
    const caller = await client();
    const replies = await caller.receiver({ dynamic: true });
    const replyTo = (replies.link.source as { address: string }).address;
    expect(replyTo).toMatch(/^amqp-tmp-/);
    const sender = await caller.sender('queue://rpc');
    await sender.send({ body: 'ping', reply_to: replyTo, correlation_id: 'c-1' });
    const [request] = await requests.waitFor(1);
    const outcome = await relay.send({
      to: request!.message.reply_to!,
      body: 'pong',
      correlation_id: request!.message.correlation_id!,
    });
    expect(outcome.outcome).toBe('accepted');
    const [reply] = await replies.waitFor(1);
    expect(reply!.message.body).toBe('pong');
    expect(reply!.message.correlation_id).toBe('c-1');
  });
});

/** Whether the broker's attach carried no terminus (a null): rhea hands that on as a typed null. */
function absent(terminus: unknown): boolean {
  return terminus === null || (terminus as { value?: unknown }).value === null;
}

describe('security', () => {
  it('authenticates with SASL PLAIN and refuses a wrong password', async () => {
    const ok = await client({ username: 'alice', password: 'secret-pw' });
    await ok.sender('queue://x');
    await expect(TestClient.connect(broker.port, { username: 'alice', password: 'nope' })).rejects.toThrow();
    expect(broker.metrics.get('robustmq_amqp_refused_total', { reason: 'bad_credentials' })).toBe(1);
  });

  it('refuses a link to a forbidden address with unauthorized-access', async () => {
    const c = await client();
    const sender = await c.sender('queue://secret-plans');
    const error = await sender.waitClosed();
    expect(error.condition).toBe('amqp:unauthorized-access');
    const receiver = await c.receiver('queue://secret-plans');
    expect((await receiver.waitClosed()).condition).toBe('amqp:unauthorized-access');
    const fine = await c.sender('queue://open');
    expect((await fine.send({ body: 1 })).outcome).toBe('accepted');
  });

  it('attaches a refused link with a null terminus on its side, then detaches it with the error (AMQP 1.0 section 2.6.3)', async () => {
    const c = await client();
    // The client's sender: the broker's end receives, and its target is the refused terminus.
    const sender = await c.sender('queue://secret-plans');
    expect((await sender.waitClosed()).condition).toBe('amqp:unauthorized-access');
    expect(absent(sender.link.target)).toBe(true);
    // The client's receiver: the broker's end sends, from the refused source.
    const receiver = await c.receiver('queue://secret-plans');
    expect((await receiver.waitClosed()).condition).toBe('amqp:unauthorized-access');
    expect(absent(receiver.link.source)).toBe(true);
    // Refused without waiting for a check: an address that is no valid name.
    const invalid = await c.receiver('queue://no spaces/allowed');
    expect((await invalid.waitClosed()).condition).toBe('amqp:invalid-field');
    expect(absent(invalid.link.source)).toBe(true);
    // Links that are not refused still get their terminus.
    const fine = await c.sender('queue://open');
    expect(absent(fine.link.target)).toBe(false);
    expect(fine.link.target.address).toBe('queue://open');
    const reader = await c.receiver('queue://open');
    expect(reader.link.source.address).toBe('queue://open');
  });

  it('attaches a link to an unknown address with a null terminus when addresses are not created on use', async () => {
    const strict = await startInProcess({ auto_create: false });
    const c = await TestClient.connect(strict.port);
    try {
      const sender = await c.sender('queue://nowhere');
      expect((await sender.waitClosed()).condition).toBe('amqp:not-found');
      expect(absent(sender.link.target)).toBe(true);
      const receiver = await c.receiver('queue://nowhere');
      expect((await receiver.waitClosed()).condition).toBe('amqp:not-found');
      expect(absent(receiver.link.source)).toBe(true);
    } finally {
      await c.close();
      await strict.stop();
    }
  });

  it('refuses an invalid address name', async () => {
    const c = await client();
    const receiver = await c.receiver('queue://no spaces/allowed');
    expect((await receiver.waitClosed()).condition).toBe('amqp:invalid-field');
  });
});

describe('admin resources', () => {
  it('lists queues and links', async () => {
    const c = await client();
    const sender = await c.sender('queue://listed');
    await sender.send({ body: 1 });
    await c.receiver('queue://listed', { credit_window: 0 });
    const resources = broker.plugin.adminResources();
    // The consumer joins the queue once its link is checked, as the broker answers its attach.
    await expect
      .poll(async () => (await resources.queues!.list({ limit: 10 })).items)
      .toContainEqual({ id: 'listed', kind: 'queue', depth: 1, consumers: 1, unsettled: 0 });
    const links = await resources.links!.list({ limit: 10 });
    expect(links.items.map((l) => l.role).sort()).toEqual(['receiver', 'sender']);
    expect(links.items.find((l) => l.role === 'sender')).toMatchObject({
      address: 'queue://listed',
      credit: 0,
    });
  });
});

describe('addresses of stored topics with a compression.type', () => {
  it('writes batches with the codec the topic names, and follows changes to it', async () => {
    const { records, asked } = compressionNoting();
    await broker.stop();
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const catalog = new TopicCatalog(meta, storage);
    await catalog.create({
      name: 'zipped',
      partitions: 1,
      storageClass: 'memory',
      retentionMs: null,
      retentionBytes: null,
      configs: { 'compression.type': 'lz4' },
    });
    broker = await startInProcess({}, { meta, storage, records });
    const c = await client();
    const sender = await c.sender('queue://zipped');
    expect((await sender.send({ body: 'first' })).outcome).toBe('accepted');
    expect(asked).toEqual(['lz4']);

    // The broker learns of a change through a meta watch: send until a batch shows it.
    const sendUntilAsked = async (codec: RecordCompression) => {
      for (let i = 0; i < 100 && asked.at(-1) !== codec; i++) {
        await sender.send({ body: `message ${i}` });
        if (asked.at(-1) !== codec) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return asked.at(-1);
    };
    await catalog.alter('zipped', { configs: { 'compression.type': 'snappy' } });
    expect(await sendUntilAsked('snappy')).toBe('snappy');
    await catalog.alter('zipped', { configs: { 'compression.type': 'producer' } });
    expect(await sendUntilAsked('none')).toBe('none');
    const receiver = await c.receiver('queue://zipped');
    await receiver.waitFor(asked.length);
    expect(receiver.bodies()[0]).toBe('first');
  });
});
