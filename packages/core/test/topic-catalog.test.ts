import { describe, expect, it } from 'vitest';
import {
  decodeTopic,
  DEFAULT_SHARD_CONFIG,
  encodeTopic,
  shardConfigOf,
  topicKey,
  type Topic,
} from '../src/index.js';

const orders: Topic = {
  name: 'orders',
  partitions: 3,
  storageClass: 'file',
  retentionMs: 86_400_000,
  retentionBytes: null,
  configs: { 'cleanup.policy': 'delete' },
  createdAt: 1_700_000_000_000,
};

describe('topic catalog entries', () => {
  it('round-trip through the meta store encoding under /topics/<name>', () => {
    expect(topicKey('orders')).toBe('/topics/orders');
    expect(decodeTopic(encodeTopic(orders))).toEqual(orders);
    const placed: Topic = { ...orders, preferredLeaders: [[2, 3], [3], [2]] };
    expect(decodeTopic(encodeTopic(placed))).toEqual(placed);
    const going: Topic = { ...orders, deletingSince: 1_700_000_100_000 };
    expect(decodeTopic(encodeTopic(going))).toEqual(going);
  });

  it('refuse entries that are not topics', () => {
    const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    expect(() => decodeTopic(new Uint8Array([0xff, 0x00]))).toThrow(/not JSON/);
    expect(() => decodeTopic(bytes({ ...orders, partitions: 0 }))).toThrow(/CORRUPT|mistyped/);
    expect(() => decodeTopic(bytes({ ...orders, storageClass: 'floppy' }))).toThrow(/mistyped/);
    expect(() => decodeTopic(bytes({ ...orders, retentionMs: -1 }))).toThrow(/retentionMs/);
    expect(() => decodeTopic(bytes({ ...orders, configs: { 'retention.ms': 5 } }))).toThrow(/retention\.ms/);
    expect(() => decodeTopic(bytes({ ...orders, preferredLeaders: [[2], ['3']] }))).toThrow(
      /preferredLeaders/,
    );
    expect(() => decodeTopic(bytes({ ...orders, deletingSince: 'soon' }))).toThrow(/deletingSince/);
  });
});

describe('shardConfigOf', () => {
  it('maps the Kafka configs storage acts on to shard settings', () => {
    const topic: Topic = {
      ...orders,
      configs: { 'segment.bytes': '65536', 'segment.ms': '3600000', 'max.message.bytes': '2048' },
    };
    expect(shardConfigOf(topic)).toEqual({
      retentionMs: 86_400_000,
      retentionBytes: null,
      segmentBytes: 65536,
      segmentMs: 3_600_000,
      maxBatchBytes: 2048,
    });
    // Left unset, the shard keeps its engine's default; removed, it goes back to the default.
    expect(shardConfigOf(orders)).not.toHaveProperty('segmentMs');
    expect(shardConfigOf(orders, topic)).toMatchObject({
      segmentBytes: DEFAULT_SHARD_CONFIG.segmentBytes,
      segmentMs: DEFAULT_SHARD_CONFIG.segmentMs,
      maxBatchBytes: DEFAULT_SHARD_CONFIG.maxBatchBytes,
    });
  });

  it.each(['0', '-1', '1.5', 'hourly'])('refuses segment.ms=%s', (value) => {
    expect(() => shardConfigOf({ ...orders, configs: { 'segment.ms': value } })).toThrow(/segment\.ms/);
  });
});
