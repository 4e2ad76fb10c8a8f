import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  isRobustMQError,
  parseShardName,
  shardName,
  storedCompression,
  validateShardName,
  validateTopicName,
} from '../src/index.js';
import { topicWith } from './helpers/topic.js';

describe('names', () => {
  it('round-trips shard names of topic partitions', () => {
    expect(shardName('orders', 3)).toBe('orders/3');
    expect(parseShardName('orders/3')).toEqual({ topic: 'orders', partition: 3 });
    expect(parseShardName('orders-2/0')).toEqual({ topic: 'orders-2', partition: 0 });
    expect(parseShardName('orders')).toBeNull();
    expect(parseShardName('orders/x')).toBeNull();
  });

  it.each(['../etc', 'a/../b', '/abs', 'a//b', '', 'a b', 'x'.repeat(256), 'a/.', 'ü'])(
    'refuses shard name %j with INVALID_ARGUMENT',
    (name) => {
      let error: unknown;
      try {
        validateShardName(name);
      } catch (e) {
        error = e;
      }
      expect(isRobustMQError(error, ErrorCode.InvalidArgument)).toBe(true);
    },
  );

  it('accepts the names engines and protocols create', () => {
    for (const name of ['orders/0', '__consumer_offsets/49', 'mqtt.sessions/a-b_c']) {
      expect(() => validateShardName(name)).not.toThrow();
    }
  });

  it('applies Kafka topic naming to stored topics', () => {
    expect(() => validateTopicName('orders.v1_x-y')).not.toThrow();
    for (const bad of ['', '.', '..', 'a/b', 'a b', 'x'.repeat(250)]) {
      expect(() => validateTopicName(bad)).toThrow(/invalid topic name/);
    }
  });
});

describe('storedCompression', () => {
  it("is the codec a topic's compression.type names", () => {
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
      expect(storedCompression(topicWith({ 'compression.type': codec }))).toBe(codec);
    }
  });

  it('is none for producer, uncompressed, unset or an unknown value', () => {
    expect(storedCompression(topicWith({ 'compression.type': 'producer' }))).toBe('none');
    expect(storedCompression(topicWith({ 'compression.type': 'uncompressed' }))).toBe('none');
    expect(storedCompression(topicWith({}))).toBe('none');
    expect(storedCompression(topicWith({ 'compression.type': 'brotli' }))).toBe('none');
  });
});
