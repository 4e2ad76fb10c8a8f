import { createRequire } from 'node:module';
import type { Delivery } from 'rhea';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { TestClient, type TestReceiver } from './helpers/rhea-client.js';

const require = createRequire(import.meta.url);

let broker: Awaited<ReturnType<typeof startInProcess>>;

beforeAll(async () => {
  broker = await startInProcess();
});

afterAll(async () => {
  await broker.stop();
});

async function fill(address: string, count: number): Promise<void> {
  const client = await TestClient.connect(broker.port);
  const sender = await client.sender(address);
  await Promise.all(Array.from({ length: count }, (_, i) => sender.send({ body: `m-${i}` })));
  await client.close();
}

/** What a new consumer gets from `address` within a short wait: what the queue still holds. */
async function leftIn(address: string): Promise<unknown[]> {
  const client = await TestClient.connect(broker.port);
  const receiver = await client.receiver(address);
  await new Promise((r) => setTimeout(r, 300));
  await client.close();
  return receiver.bodies();
}

async function settledByBroker(receiver: TestReceiver, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !receiver.inbox.every((r) => (r.delivery as Delivery & { remote_settled: boolean }).remote_settled)
  ) {
    if (Date.now() > deadline) throw new Error('the broker did not settle');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('dispositions from consumers', () => {
  it('takes one disposition for a range of deliveries', async () => {
    await fill('queue://range', 300);
    const client = await TestClient.connect(broker.port);
    // rhea accepts what arrived in one turn with one disposition covering the range.
    const receiver = await client.receiver('queue://range');
    await receiver.waitFor(300);
    await new Promise((r) => setTimeout(r, 100));
    await client.close();
    // fill() sends as credit comes, not necessarily in order: each message once is what counts.
    expect([...receiver.bodies()].sort()).toEqual(Array.from({ length: 300 }, (_, i) => `m-${i}`).sort());
    expect(await leftIn('queue://range')).toEqual([]);
  });

  it('answers a consumer that settles second (rcv-settle-mode second) by settling first', async () => {
    await fill('queue://second', 20);
    const client = await TestClient.connect(broker.port);
    const receiver = await client.receiver('queue://second', { rcv_settle_mode: 1 });
    await receiver.waitFor(20);
    await settledByBroker(receiver);
    // Its settling disposition names the outcome settled on; with none, rhea's receiver takes the
    // state for an unknown outcome (and says so on the console).
    const states = receiver.inbox.map(
      ({ delivery }) =>
        (delivery as Delivery & { remote_state?: { constructor: { composite_type?: string } } }).remote_state
          ?.constructor.composite_type,
    );
    expect(states).toEqual(Array(20).fill('accepted'));
    await client.close();
    expect(await leftIn('queue://second')).toEqual([]);
  });

  it('counts a settlement without an outcome as accepted', async () => {
    await fill('queue://bare', 10);
    const client = await TestClient.connect(broker.port);
    const receiver = await client.receiver('queue://bare', { autoaccept: false });
    const got = await receiver.waitFor(10);
    // rhea writes no outcome as an AMQP null, which the broker's rhea would print as an unknown one.
    const printed = vi.spyOn(console, 'error');
    try {
      for (const { delivery } of got) delivery.update(true);
      await new Promise((r) => setTimeout(r, 200));
      expect(printed).not.toHaveBeenCalled();
    } finally {
      printed.mockRestore();
    }
    await client.close();
    expect(await leftIn('queue://bare')).toEqual([]);
  });

  it('takes different outcomes within one turn', async () => {
    await fill('queue://mixed', 4);
    const client = await TestClient.connect(broker.port);
    const receiver = await client.receiver('queue://mixed', { autoaccept: false });
    const got = await receiver.waitFor(4);
    // rhea's client folds a delivery into the range before it when that range has one delivery, whatever
    // its outcome; two accepted first keep the release in a frame of its own.
    got[0]!.delivery.accept();
    got[1]!.delivery.accept();
    got[2]!.delivery.release();
    await new Promise((r) => setTimeout(r, 20));
    got[3]!.delivery.reject({ condition: 'app:bad', description: 'no' });
    // The released one comes back to the same consumer.
    const [, , , , again] = await receiver.waitFor(5);
    expect(again!.message.body).toBe(got[2]!.message.body);
    again!.delivery.accept();
    await new Promise((r) => setTimeout(r, 100));
    await client.close();
    expect(await leftIn('queue://mixed')).toEqual([]);
  });

  it('ignores a disposition for deliveries it never sent', async () => {
    await fill('queue://unknown-ids', 2);
    const client = await TestClient.connect(broker.port);
    const receiver = await client.receiver('queue://unknown-ids', { autoaccept: false });
    const got = await receiver.waitFor(2);
    const session = (receiver.link as unknown as { session: { output(frame: unknown): void } }).session;
    const frames = require('rhea/lib/frames.js') as { disposition(fields: Record<string, unknown>): unknown };
    session.output(frames.disposition({ role: true, first: 1000, last: 1010, settled: true }));
    for (const { delivery } of got) delivery.accept();
    await new Promise((r) => setTimeout(r, 200));
    expect(client.connection.is_open()).toBe(true);
    await client.close();
    expect(await leftIn('queue://unknown-ids')).toEqual([]);
  });

  it('gives the unsettled messages of a consumer that leaves to the one that stays, the rest untouched', async () => {
    await fill('queue://leaving', 40);
    const client = await TestClient.connect(broker.port);
    const stays = await client.receiver('queue://leaving', { autoaccept: false, credit_window: 0 });
    const leaves = await client.receiver('queue://leaving', { autoaccept: false, credit_window: 0 });
    stays.link.add_credit(15);
    leaves.link.add_credit(15);
    await stays.waitFor(15);
    await leaves.waitFor(15);
    // Settle some of each, so the leaving one's unsettled are spread among the stayer's.
    for (const { delivery } of stays.inbox.slice(0, 5)) delivery.accept();
    for (const { delivery } of leaves.inbox.slice(0, 5)) delivery.accept();
    await new Promise((r) => setTimeout(r, 100));
    leaves.link.close();
    stays.link.add_credit(100);
    // 10 the stayer holds, 10 come back from the one that left, 10 were never delivered.
    await stays.waitFor(35);
    const settledByLeaver = new Set(leaves.inbox.slice(0, 5).map((r) => r.message.body as string));
    const all = stays.bodies() as string[];
    expect(new Set(all).size).toBe(35);
    expect(all.some((body) => settledByLeaver.has(body))).toBe(false);
    for (const { delivery } of stays.inbox.slice(5)) delivery.accept();
    await new Promise((r) => setTimeout(r, 100));
    await client.close();
    expect(await leftIn('queue://leaving')).toEqual([]);
  });

  it('takes a disposition naming a huge range of ids at once, for the deliveries it holds', async () => {
    await fill('queue://wide', 3);
    const client = await TestClient.connect(broker.port);
    const receiver = await client.receiver('queue://wide', { autoaccept: false });
    await receiver.waitFor(3);
    const session = (receiver.link as unknown as { session: { output(frame: unknown): void } }).session;
    const frames = require('rhea/lib/frames.js') as { disposition(fields: Record<string, unknown>): unknown };
    const message = require('rhea/lib/message.js') as { accepted(): { described(): unknown } };
    const started = Date.now();
    session.output(
      frames.disposition({
        role: true,
        first: 0,
        last: 0xffff_fff0,
        settled: true,
        state: message.accepted().described(),
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(client.connection.is_open()).toBe(true);
    await client.close();
    expect(await leftIn('queue://wide')).toEqual([]);
  });
});
