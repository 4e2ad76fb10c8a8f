import type { EventContext, Receiver, Sender } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { TestClient } from './helpers/rhea-client.js';

let broker: Awaited<ReturnType<typeof startInProcess>>;

beforeAll(async () => {
  broker = await startInProcess();
});

afterAll(async () => {
  await broker.stop();
});

/** Detaches `link` without closing it; resolves with the `closed` flag of the broker's detach. */
function detachWithoutClosing(link: Sender | Receiver): Promise<boolean | undefined> {
  const event = link.is_sender() ? 'sender_close' : 'receiver_close';
  const answered = new Promise<boolean | undefined>((resolve) =>
    link.once(event, (context: EventContext) => {
      const endpoint = (context.sender ?? context.receiver) as unknown as {
        remote: { detach?: { closed?: boolean } };
      };
      resolve(endpoint.remote.detach?.closed);
    }),
  );
  link.detach();
  return answered;
}

describe('detach (AMQP 1.0 section 2.6.6)', () => {
  it('answers a detach that does not close the link with one that does not either', async () => {
    const client = await TestClient.connect(broker.port);
    const sender = await client.sender('queue://detach-kept');
    const receiver = await client.receiver('queue://detach-kept');
    // AMQP.Net Lite's Link.Detach fails when the link is closed in answer instead of detached.
    expect(await detachWithoutClosing(sender.link)).not.toBe(true);
    expect(await detachWithoutClosing(receiver.link)).not.toBe(true);
    // The broker has let go of both links: their names attach again.
    const again = await client.sender('queue://detach-kept', { name: sender.link.name });
    expect((await again.send({ body: 'after' })).outcome).toBe('accepted');
    const next = await client.receiver('queue://detach-kept', { name: receiver.link.name });
    await next.waitFor(1);
    expect(next.bodies()).toEqual(['after']);
    expect(client.connection.is_open()).toBe(true);
    await client.close();
  });

  it('answers a detach that closes the link with one that closes it', async () => {
    const client = await TestClient.connect(broker.port);
    const receiver = await client.receiver('queue://detach-closed');
    const answered = new Promise<boolean | undefined>((resolve) =>
      receiver.link.once('receiver_close', (context: EventContext) =>
        resolve(
          (context.receiver as unknown as { remote: { detach?: { closed?: boolean } } }).remote.detach
            ?.closed,
        ),
      ),
    );
    receiver.link.close();
    expect(await answered).toBe(true);
    await client.close();
  });

  it('gives the unsettled messages of a detached consumer to the next one', async () => {
    const client = await TestClient.connect(broker.port);
    const sender = await client.sender('queue://detach-unsettled');
    await sender.send({ body: 'kept' });
    const first = await client.receiver('queue://detach-unsettled', { autoaccept: false });
    await first.waitFor(1);
    await detachWithoutClosing(first.link);
    const second = await client.receiver('queue://detach-unsettled');
    const [again] = await second.waitFor(1);
    expect(again!.message.body).toBe('kept');
    await client.close();
  });
});
