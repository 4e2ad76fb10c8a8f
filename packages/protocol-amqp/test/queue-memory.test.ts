import rhea from 'rhea';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { TestClient, type TestReceiver } from './helpers/rhea-client.js';

const LIMIT = 65_536;
const BODY = 8000;
const COUNT = 40;

let broker: Awaited<ReturnType<typeof startInProcess>>;
let client: TestClient;

beforeEach(async () => {
  broker = await startInProcess({ queue_memory_bytes: LIMIT });
  client = await TestClient.connect(broker.port);
});

afterEach(async () => {
  await client.close();
  await broker.stop();
});

/** Sends COUNT messages of BODY bytes each to `address`, in order, each accepted. */
async function fill(address: string): Promise<void> {
  const sender = await client.sender(address);
  // With credit for all at hand, each send goes out at once, in the order made.
  const link = sender.link as unknown as { credit: number };
  await expect.poll(() => link.credit >= COUNT).toBe(true);
  const outcomes = await Promise.all(
    Array.from({ length: COUNT }, (_, i) =>
      sender.send({ body: rhea.message.data_section(Buffer.alloc(BODY, i)) }),
    ),
  );
  expect(outcomes.every((o) => o.outcome === 'accepted')).toBe(true);
}

/**
 * What the queue holds in memory, as its gauge reads once flushed (every second); `null` for the
 * temporary queues, which are counted together.
 */
async function memory(queue: string | null, until: (bytes: number) => boolean): Promise<number> {
  const read = () =>
    queue === null
      ? broker.metrics.get('robustmq_amqp_temporary_queue_memory_bytes')
      : broker.metrics.get('robustmq_amqp_queue_memory_bytes', { queue });
  await expect.poll(() => until(read()), { timeout: 5000, interval: 100 }).toBe(true);
  return read();
}

/** Gives credit for everything; expects every message, in order and whole. */
async function drain(receiver: TestReceiver): Promise<void> {
  receiver.link.add_credit(COUNT);
  await receiver.waitFor(COUNT);
  const got = receiver.inbox.map((r) => (r.message.body as { content: Buffer }).content);
  expect(got.map((content) => content[0])).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  expect(got.every((content, i) => content.equals(Buffer.alloc(BODY, i)))).toBe(true);
}

describe('queue_memory_bytes', () => {
  it('keeps a queue with no consumer to its bytes; the rest is read from storage, in order', async () => {
    await fill('queue://bounded');
    const held = await memory('bounded', (bytes) => bytes > 0);
    // Taken until the bound is reached: at most one message past it, far from all 320 kB.
    expect(held).toBeGreaterThanOrEqual(LIMIT);
    expect(held).toBeLessThan(LIMIT + BODY + 100);
    const receiver = await client.receiver('queue://bounded', { credit_window: 0 });
    await drain(receiver);
    expect(await memory('bounded', (bytes) => bytes === 0)).toBe(0);
  });

  it('keeps a queue whose consumer gives no credit to its bytes', async () => {
    const receiver = await client.receiver('queue://no-credit', { credit_window: 0 });
    await fill('queue://no-credit');
    const held = await memory('no-credit', (bytes) => bytes > 0);
    expect(held).toBeGreaterThanOrEqual(LIMIT);
    expect(held).toBeLessThan(LIMIT + BODY + 100);
    await drain(receiver);
  });

  it('keeps a temporary queue to its bytes, the rest in storage until read, deleted with it', async () => {
    const receiver = await client.receiver({ dynamic: true }, { credit_window: 0 });
    const address = receiver.link.source.address;
    expect(address).toMatch(/^amqp-tmp-/);
    await fill(address);
    const held = await memory(null, (bytes) => bytes > 0);
    expect(held).toBeGreaterThanOrEqual(LIMIT);
    expect(held).toBeLessThan(LIMIT + BODY + 100);
    const shard = `amqp-temporary/1/${address}`;
    expect((await broker.storage.shardInfo(shard)).nextOffset).toBe(COUNT);
    await drain(receiver);
    await new Promise<void>((resolve) => {
      receiver.link.once('receiver_close', () => resolve());
      receiver.link.close();
    });
    await expect.poll(async () => (await broker.storage.listShards()).includes(shard)).toBe(false);
    expect(await memory(null, (bytes) => bytes === 0)).toBe(0);
  });
});
