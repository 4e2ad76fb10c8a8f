import {
  silentLogger,
  type Message,
  type MessageHandler,
  type MessageOrigin,
  type Router,
} from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { Compression, encodeRecordBatch } from '../src/codec/index.js';
import { publishStoredBatch } from '../src/broker/router-feed.js';

/** A router that hands every message to one handler, as the MQTT plugin's `#` subscription gets it. */
function routerOf(handler: MessageHandler): Router {
  return {
    publish(message: Message, origin: MessageOrigin) {
      handler(message, origin);
      return 1;
    },
    subscribe: () => {
      throw new Error('not used');
    },
  };
}

describe('stored Kafka records on the router', () => {
  it('publishes each record with its topic, key, value, headers and timestamp, origin kafka', async () => {
    const batch = await encodeRecordBatch({
      compression: Compression.gzip,
      records: [
        {
          key: 'sensors/a',
          value: Buffer.from([0, 0xff]),
          headers: [{ key: 'unit', value: 'C' }],
          timestamp: 1000,
        },
        { key: null, value: null, timestamp: 2000 },
      ],
    });
    const seen: Array<{ message: Message; origin: MessageOrigin }> = [];
    publishStoredBatch(
      routerOf((message, origin) => seen.push({ message, origin })),
      'sensors',
      batch,
      silentLogger,
    );
    expect(
      seen.map(({ message, origin }) => ({
        topic: message.topic,
        key: message.key === null ? null : Buffer.from(message.key).toString(),
        payload: Buffer.from(message.payload),
        headers: message.headers.map((h) => [h.key, Buffer.from(h.value).toString()]),
        timestamp: message.timestamp,
        origin: origin.protocol,
      })),
    ).toEqual([
      {
        topic: 'sensors',
        key: 'sensors/a',
        payload: Buffer.from([0, 0xff]),
        headers: [['unit', 'C']],
        timestamp: 1000,
        origin: 'kafka',
      },
      {
        topic: 'sensors',
        key: null,
        payload: Buffer.alloc(0),
        headers: [],
        timestamp: 2000,
        origin: 'kafka',
      },
    ]);
  });

  it('does not decode records a subscriber only looks at the topic of', async () => {
    const batch = await encodeRecordBatch({ records: [{ key: 'k', value: 'v' }] });
    // Records that cannot be decoded: reading anything but the topic would throw.
    batch.fill(0xff, 61);
    const topics: string[] = [];
    publishStoredBatch(
      routerOf((message) => topics.push(message.topic)),
      't',
      batch,
      silentLogger,
    );
    expect(topics).toEqual(['t']);
  });

  it('stops after the first record of a batch when nobody subscribes to its topic', async () => {
    const batch = await encodeRecordBatch({ records: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
    const published: string[] = [];
    const nobody: Router = {
      publish(message: Message) {
        published.push(message.topic);
        return 0;
      },
      subscribe: () => {
        throw new Error('not used');
      },
    };
    publishStoredBatch(nobody, 't', batch, silentLogger);
    expect(published).toEqual(['t']);
  });

  it('leaves transactional batches out', async () => {
    const batch = await encodeRecordBatch({
      records: [{ value: 'in a transaction' }],
      transactional: true,
      producerId: 7n,
      producerEpoch: 0,
      baseSequence: 0,
    });
    const seen: Message[] = [];
    publishStoredBatch(
      routerOf((message) => seen.push(message)),
      't',
      batch,
      silentLogger,
    );
    expect(seen).toEqual([]);
  });
});
