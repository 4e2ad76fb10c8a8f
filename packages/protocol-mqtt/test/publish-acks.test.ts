import type { AppendResult, RecordBatch } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { connectClient, connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';

/** Memory storage whose appends wait, while the gate is closed, until the test opens it. */
class GatedStorage extends MemoryStorageEngine {
  private gate: Promise<void> | null = null;
  private open: () => void = () => {};

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.gate = null;
    this.open();
  }

  override async append(shard: string, batches: readonly RecordBatch[]): Promise<AppendResult> {
    if (this.gate !== null) await this.gate;
    return super.append(shard, batches);
  }
}

// A publisher's QoS 1 messages to a persistent subscriber are each acknowledged once the
// subscriber's session holds them durably, in the order they were sent; the messages after one
// waiting for its storage are handled meanwhile.

describe('PUBACKs waiting for storage', () => {
  const clients: MqttClient[] = [];
  let stop: () => Promise<void> = () => Promise.resolve();

  afterEach(async () => {
    await endAll(clients.splice(0));
    await stop();
  });

  it('go out in order once stored, while the messages after them are already delivered', async () => {
    const storage = new GatedStorage();
    const broker = await startInProcess({}, { storage });
    stop = () => broker.stop();
    const { client: subscriber, inbox } = await connectWithInbox(broker.port, {
      clientId: 'keeper',
      clean: false,
    });
    clients.push(subscriber);
    await subscriber.subscribeAsync('pipe/#', { qos: 1 });
    const publisher = await connectClient(broker.port, { clientId: 'pipeliner' });
    clients.push(publisher);

    storage.hold();
    const acked: string[] = [];
    const published = ['m1', 'm2', 'm3'].map((payload) =>
      publisher.publishAsync('pipe/x', payload, { qos: 1 }).then(() => void acked.push(payload)),
    );
    // All three reach the subscriber while none of them is stored yet, so none is acknowledged.
    expect((await inbox.waitFor(3)).map((m) => m.payload)).toEqual(['m1', 'm2', 'm3']);
    expect(acked).toEqual([]);
    storage.release();
    await Promise.all(published);
    expect(acked).toEqual(['m1', 'm2', 'm3']);
  });
});
