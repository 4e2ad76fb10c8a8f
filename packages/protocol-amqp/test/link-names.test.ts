import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { run } from './helpers/processes.js';
import { TestClient, TestReceiver, TestSender } from './helpers/rhea-client.js';

const PROTON = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures/proton_client.py');

let broker: Awaited<ReturnType<typeof startInProcess>>;
const clients: TestClient[] = [];

beforeEach(async () => {
  broker = await startInProcess();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await broker.stop();
});

function proton(command: string, address: string) {
  return run(
    '/usr/bin/python3',
    [PROTON, command, `amqp://127.0.0.1:${broker.port}`, address, '--timeout', '5'],
    20_000,
  );
}

async function client(): Promise<TestClient> {
  const c = await TestClient.connect(broker.port);
  clients.push(c);
  return c;
}

describe('link names (a name is unique per direction only, AMQP 1.0 section 2.6.1)', () => {
  it('serves a sender and a receiver of the same name on one connection', async () => {
    const c = await client();
    const sender = await c.sender('queue://same-name', { name: 'orders-link' });
    expect((await sender.send({ body: 'first' })).outcome).toBe('accepted');
    const receiver = await c.receiver('queue://same-name', { name: 'orders-link' });
    await receiver.waitFor(1);
    expect((await sender.send({ body: 'second' })).outcome).toBe('accepted');
    await receiver.waitFor(2);
    expect(receiver.bodies()).toEqual(['first', 'second']);
    expect(c.connection.is_open()).toBe(true);
    expect(broker.metrics.get('robustmq_amqp_bad_input_total', { reason: 'decode_error' })).toBe(0);
  });

  it('refuses a second receiving link of a name attached already with illegal-state; the first goes on', async () => {
    const c = await client();
    const first = await c.receiver('queue://named-twice', { name: 'twice' });
    const second = new TestReceiver(
      c.connection.open_receiver({ name: 'twice', source: { address: 'queue://named-twice' } }),
    );
    expect(await second.waitClosed(2000)).toMatchObject({ condition: 'amqp:illegal-state' });
    const sender = await c.sender('queue://named-twice');
    expect((await sender.send({ body: 'after' })).outcome).toBe('accepted');
    await first.waitFor(1);
    expect(first.bodies()).toEqual(['after']);
    expect(second.inbox).toEqual([]);
    expect(c.connection.is_open()).toBe(true);
    expect(broker.metrics.get('robustmq_amqp_bad_input_total', { reason: 'link_name_in_use' })).toBe(1);
  });

  it('refuses a second sending link of a name attached already with illegal-state; the first goes on', async () => {
    const c = await client();
    const first = await c.sender('queue://sent-twice', { name: 'twice' });
    const second = new TestSender(
      c.connection.open_sender({ name: 'twice', target: { address: 'queue://sent-twice' } }),
    );
    expect(await second.waitClosed(2000)).toMatchObject({ condition: 'amqp:illegal-state' });
    expect((await first.send({ body: 'after' })).outcome).toBe('accepted');
    const receiver = await c.receiver('queue://sent-twice');
    await receiver.waitFor(1);
    expect(receiver.bodies()).toEqual(['after']);
    expect(c.connection.is_open()).toBe(true);
    expect(broker.metrics.get('robustmq_amqp_bad_input_total', { reason: 'link_name_in_use' })).toBe(1);
  });

  it('detaches one of the two without the other, and takes the name again', async () => {
    const result = await proton('same-name', 'queue://same-name-again');
    expect(result.stderr).toBe('');
    expect(
      result.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([{ received: 'first' }, { received: 'while detached' }, { received: 'after' }]);
  });

  it("runs qpid-proton's helloworld: send and receive on one address over one connection", async () => {
    const result = await proton('hello', 'examples');
    expect(result.stderr).toBe('');
    const [line] = result.stdout.trim().split('\n');
    const hello = JSON.parse(line!) as { received: string; receiver: string; sender: string };
    expect(hello.received).toBe('Hello World!');
    // proton's default names: the same for both links.
    expect(hello.sender).toBe(hello.receiver);
  });
});
