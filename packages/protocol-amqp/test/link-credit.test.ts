import type { Receiver } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, type TestReceiver } from './helpers/rhea-client.js';
import { startServer, type AmqpServer } from './helpers/server.js';

// A real server process: a broker stuck in a loop must not take the test runner with it.
let server: AmqpServer;
const clients: TestClient[] = [];

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  // A broker that no longer takes signals is killed, so that a failure here leaves nothing running.
  const stopped = server.stop();
  const killed = new Promise<void>((resolve) => setTimeout(resolve, 5000)).then(() => server.kill());
  await Promise.race([stopped, killed]);
});

/** What rhea keeps of a receiving link's flow state, which a test sets to write a given flow. */
interface FlowState {
  delivery_count: number | null;
  credit: number;
}

const flowState = (receiver: TestReceiver) => receiver.link as unknown as FlowState;

async function client(): Promise<TestClient> {
  const c = await TestClient.connect(server.port);
  clients.push(c);
  return c;
}

/** A queue holding `count` messages, and a consumer with no credit yet. */
async function queueWith(address: string, count: number): Promise<TestReceiver> {
  const c = await client();
  const sender = await c.sender(address);
  for (let i = 0; i < count; i++) expect((await sender.send({ body: i })).outcome).toBe('accepted');
  return c.receiver(address, { credit_window: 0 });
}

function drained(link: Receiver): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the drain was not answered in 5 s')), 5000);
    link.once('receiver_drained', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function stillServes(address: string): Promise<void> {
  const receiver = await queueWith(address, 1);
  receiver.link.add_credit(1);
  await receiver.waitFor(1);
}

describe("the broker's credit on a sending link (AMQP 1.0 section 2.6.7)", () => {
  it('answers a drain whose flow counts fewer deliveries than were sent, and goes on serving', async () => {
    const receiver = await queueWith('queue://drain-behind', 10);
    receiver.link.add_credit(10);
    await receiver.waitFor(10);
    // A flow written before the receiver saw the last transfers: its delivery-count is behind the
    // broker's, so its credit is less than what is already on the way (0 + 1 - 10).
    flowState(receiver).delivery_count = 0;
    const answered = drained(receiver.link);
    receiver.link.drain = true;
    receiver.link.add_credit(1);
    await answered;
    // The flow that ended the drain carried the broker's own count.
    expect(flowState(receiver).delivery_count).toBe(10);
    expect(flowState(receiver).credit).toBe(0);
    await stillServes('queue://after-drain-behind');
  });

  it('sends nothing on a flow whose credit the deliveries under way have used, and sends on the next', async () => {
    const receiver = await queueWith('queue://credit-behind', 15);
    receiver.link.add_credit(10);
    await receiver.waitFor(10);
    flowState(receiver).delivery_count = 0;
    receiver.link.add_credit(5);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.inbox).toHaveLength(10);
    // The receiver's count again as it is, and credit for the rest.
    flowState(receiver).delivery_count = 10;
    flowState(receiver).credit = 0;
    receiver.link.add_credit(5);
    await receiver.waitFor(15);
    expect(receiver.bodies()).toEqual(Array.from({ length: 15 }, (_, i) => i));
  });

  it('takes the initial delivery-count for a flow that has none (a receiver that has not seen the attach)', async () => {
    const receiver = await queueWith('queue://no-count', 3);
    flowState(receiver).delivery_count = null;
    receiver.link.add_credit(3);
    await receiver.waitFor(3);
    expect(receiver.bodies()).toEqual([0, 1, 2]);
  });

  it('counts delivery-counts as 32-bit serial numbers: a drain from a count far ahead is answered at once', async () => {
    const receiver = await queueWith('queue://count-ahead', 2);
    receiver.link.add_credit(2);
    await receiver.waitFor(2);
    // 2^32 - 1 is one behind 0 in serial arithmetic, so this flow gives 2^32 - 1 - 3 credit, not
    // 2^33 - 5: the broker gives it back in its drain, its count wrapping within 32 bits.
    flowState(receiver).delivery_count = 2 ** 32 - 1;
    flowState(receiver).credit = 2 ** 32 - 2;
    const answered = drained(receiver.link);
    receiver.link.drain = true;
    receiver.link.add_credit(1);
    await answered;
    expect(flowState(receiver).delivery_count).toBe((2 + 2 ** 32 - 4) % 2 ** 32);
    await stillServes('queue://after-count-ahead');
  });
});

describe("the broker's count on a receiving link", () => {
  it('counts from the initial delivery-count of a producer that does not start at 0, past 2^32', async () => {
    const c = await client();
    const link = c.connection.open_sender({ target: { address: 'queue://count-wraps' } });
    // Set before rhea writes the attach, on its next turn.
    (
      link as unknown as { local: { attach: { initial_delivery_count: number } } }
    ).local.attach.initial_delivery_count = 2 ** 32 - 2;
    (link as unknown as FlowState).delivery_count = 2 ** 32 - 2;
    const accepted = new Promise<number>((resolve) => {
      let count = 0;
      link.on('accepted', () => {
        if (++count === 5) resolve(count);
      });
    });
    link.once('sendable', () => {
      for (let i = 0; i < 5; i++) link.send({ body: i });
    });
    expect(await accepted).toBe(5);
    const receiver = await c.receiver('queue://count-wraps', { credit_window: 0 });
    receiver.link.add_credit(5);
    await receiver.waitFor(5);
    expect(receiver.bodies()).toEqual([0, 1, 2, 3, 4]);
  });
});
