import type { RecordCodec, StorageEngine } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { memoryMeta, startInProcess } from './helpers/in-process.js';
import { TestClient } from './helpers/rhea-client.js';

// Memory a queue keeps alive with the messages it holds, measured after a full collection; in a
// file of its own, so that no other test's garbage is counted.

/**
 * A codec that keeps one message per batch and decodes it as views of the batch's bytes, as the
 * node's Kafka codec does; what it encodes is in memory of its own, so storage keeps nothing else alive.
 */
const viewCodec: RecordCodec = {
  encode(messages) {
    const message = messages[0]!;
    const head = Buffer.from(
      JSON.stringify(message.headers.map((h) => [h.key, Buffer.from(h.value).toString('base64')])) + '\n',
    );
    const data = Buffer.allocUnsafeSlow(head.length + message.payload.length);
    head.copy(data);
    data.set(message.payload, head.length);
    return Promise.resolve({ recordCount: 1, maxTimestamp: message.timestamp, data });
  },
  decode(batch, topic) {
    const data = Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength);
    const newline = data.indexOf(0x0a);
    const headers = (JSON.parse(data.subarray(0, newline).toString()) as [string, string][]).map(
      ([key, value]) => ({ key, value: Buffer.from(value, 'base64') }),
    );
    const payload = data.subarray(newline + 1);
    return Promise.resolve([
      { topic, offset: batch.baseOffset, key: null, payload, headers, timestamp: batch.maxTimestamp },
    ]);
  },
};

/** Memory storage that reads as the journal may: each read into fresh memory far larger than what it returns. */
function spanStorage(): StorageEngine {
  const memory = new MemoryStorageEngine();
  return new Proxy(memory, {
    get(target, name) {
      const value = Reflect.get(target, name) as unknown;
      if (typeof value !== 'function') return value;
      if (name !== 'read') return (value as (...args: unknown[]) => unknown).bind(target);
      return async (...args: Parameters<StorageEngine['read']>) => {
        const result = await target.read(...args);
        const batches = result.batches.slice(0, 1).map((batch) => {
          const span = Buffer.alloc(256 * 1024);
          span.set(batch.data);
          return { ...batch, data: span.subarray(0, batch.data.length) };
        });
        return { ...result, batches };
      };
    },
  });
}

/**
 * Bytes of array buffers alive after full collections: what is kept, not garbage yet. Freed
 * backing stores may leave the count a moment after a collection, hence two, apart.
 */
async function keptArrayBuffers(): Promise<number> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  await new Promise((r) => setTimeout(r, 100));
  gc();
  return process.memoryUsage().arrayBuffers;
}

describe('memory a queue keeps alive', () => {
  it('messages taken as they are sent keep no slab of the shared buffer pool alive', async () => {
    const held = await startInProcess({}, { records: viewCodec });
    const producer = await TestClient.connect(held.port);
    try {
      const sender = await producer.sender('queue://held');
      const before = await keptArrayBuffers();
      for (let i = 0; i < 1000; i++) {
        expect(
          (await sender.send({ body: `h-${i}`, ttl: 600_000, application_properties: { n: `${i}` } }))
            .outcome,
        ).toBe('accepted');
        // Other traffic moves the shared pool on to a new 8 KiB slab.
        Buffer.allocUnsafe(4000).fill(0);
        Buffer.allocUnsafe(4000).fill(0);
      }
      // Each of the 1000 held in a slab of its own would be 8 MiB.
      expect((await keptArrayBuffers()) - before).toBeLessThan(3 * 1024 * 1024);
    } finally {
      await producer.close();
      await held.stop();
    }
  });

  it('messages read from storage keep only their own bytes, not the whole read they came in', async () => {
    const storage = spanStorage();
    const meta = memoryMeta();
    const first = await startInProcess({}, { storage, meta, records: viewCodec });
    const producer = await TestClient.connect(first.port);
    const sender = await producer.sender('queue://paged');
    for (let i = 0; i < 200; i++) expect((await sender.send({ body: `p-${i}` })).outcome).toBe('accepted');
    await producer.close();
    await first.stop();
    const before = await keptArrayBuffers();
    // Started again, the queue reads its 200 messages from storage (one read each) and holds them.
    const second = await startInProcess({}, { storage, meta, records: viewCodec });
    try {
      await expect
        .poll(() => second.metrics.get('robustmq_amqp_queue_memory_bytes', { queue: 'paged' }) > 0)
        .toBe(true);
      // As views, they would keep 200 reads of 256 KiB alive: 50 MiB.
      expect((await keptArrayBuffers()) - before).toBeLessThan(8 * 1024 * 1024);
    } finally {
      await second.stop();
    }
  });
});
