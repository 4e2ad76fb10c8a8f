import { DEFAULT_SHARD_CONFIG, ErrorCode, type DurabilityPolicy, type ShardConfig } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { expectErrorCode, expectStoredBatches } from '../assertions.js';
import { makeBatches, withOffsets } from '../batches.js';
import { readAll } from '../read-all.js';
import type { Subject } from '../subject.js';

/** Names `validateShardName` in core refuses. */
export const BAD_SHARD_NAMES: readonly string[] = [
  '',
  '../escape',
  'a/../b',
  '/absolute',
  'a//b',
  'trailing/',
  'a/.',
  'with space',
  'ü',
  'x'.repeat(256),
];

const BAD_CONFIGS: readonly Partial<ShardConfig>[] = [
  { segmentBytes: 0 },
  { segmentBytes: -1 },
  { segmentBytes: 1.5 },
  { segmentMs: 0 },
  { segmentMs: -1 },
  { segmentMs: 2.5 },
  { maxBatchBytes: 0 },
  { retentionMs: -1 },
  { retentionBytes: -1 },
  { durability: 'sometimes' as DurabilityPolicy },
];

export function describeShards(subject: Subject): void {
  describe('shards', () => {
    it('starts with no shards over an empty dir', async () => {
      expect(await subject.engine.listShards()).toEqual([]);
    });

    it('creates an empty shard at offset 0 with the default config', async () => {
      const engine = subject.engine;
      const info = await engine.createShard('orders/0');
      expect(info.name).toBe('orders/0');
      expect(info.config).toEqual({ ...DEFAULT_SHARD_CONFIG });
      expect(info.logStartOffset).toBe(0);
      expect(info.nextOffset).toBe(0);
      expect(Number.isSafeInteger(info.sizeBytes) && info.sizeBytes >= 0).toBe(true);
      expect(await engine.shardInfo('orders/0')).toEqual(info);
    });

    it('merges a partial config over the defaults', async () => {
      const engine = subject.engine;
      const wanted = {
        retentionMs: null,
        retentionBytes: 1 << 20,
        segmentBytes: 4096,
        segmentMs: 60_000,
        durability: 'fsync',
      } as const;
      const info = await engine.createShard('orders/1', wanted);
      expect(info.config).toEqual({ ...DEFAULT_SHARD_CONFIG, ...wanted });
      expect((await engine.shardInfo('orders/1')).config).toEqual({ ...DEFAULT_SHARD_CONFIG, ...wanted });
    });

    it('refuses to create a shard twice with ALREADY_EXISTS and leaves the first one as it was', async () => {
      const engine = subject.engine;
      await engine.createShard('orders/0', { segmentBytes: 4096 });
      await engine.append('orders/0', makeBatches(1));
      await expectErrorCode(engine.createShard('orders/0', { segmentBytes: 8192 }), ErrorCode.AlreadyExists);
      const info = await engine.shardInfo('orders/0');
      expect(info.config.segmentBytes).toBe(4096);
      expect(info.nextOffset).toBe(1);
    });

    it('lists the shards it holds', async () => {
      const engine = subject.engine;
      const names = ['orders/0', 'orders/1', 'x.y_z-1', 'deep/er/name', 'UPPER/3'];
      for (const name of names) await engine.createShard(name);
      expect([...(await engine.listShards())].sort()).toEqual([...names].sort());
    });

    it('keeps a shard apart from shards nested under its name', async () => {
      const engine = subject.engine;
      const names = ['a', 'a/b', 'a/b/c'];
      const written = new Map(names.map((name) => [name, makeBatches(2, { recordCount: 2 })]));
      for (const name of names) {
        await engine.createShard(name);
        await engine.append(name, written.get(name)!);
      }
      for (const name of names) {
        expectStoredBatches(await readAll(engine, name), withOffsets(written.get(name)!));
      }
      await engine.deleteShard('a');
      expect([...(await engine.listShards())].sort()).toEqual(['a/b', 'a/b/c']);
      for (const name of ['a/b', 'a/b/c']) {
        expectStoredBatches(await readAll(engine, name), withOffsets(written.get(name)!));
      }
      await engine.createShard('a');
      expect((await engine.shardInfo('a')).nextOffset).toBe(0);
    });

    it('accepts a shard name of 255 characters', async () => {
      const engine = subject.engine;
      const name = `${'t'.repeat(249)}/12345`;
      expect(name.length).toBe(255);
      const batches = makeBatches(3);
      await engine.createShard(name);
      await engine.append(name, batches);
      expect(await engine.listShards()).toEqual([name]);
      expectStoredBatches(await readAll(engine, name), withOffsets(batches));
      await engine.deleteShard(name);
      expect(await engine.listShards()).toEqual([]);
    });

    it('deletes a shard with its data', async () => {
      const engine = subject.engine;
      await engine.createShard('orders/0');
      await engine.createShard('orders/1');
      await engine.append('orders/0', makeBatches(5, { recordCount: 3 }));
      await engine.deleteShard('orders/0');
      expect(await engine.listShards()).toEqual(['orders/1']);
      await expectErrorCode(engine.shardInfo('orders/0'), ErrorCode.NotFound);
      await expectErrorCode(engine.read('orders/0', 0, { maxBytes: 1024 }), ErrorCode.NotFound);
      const again = await engine.createShard('orders/0');
      expect(again.nextOffset).toBe(0);
      expect(again.logStartOffset).toBe(0);
      expect((await engine.read('orders/0', 0, { maxBytes: 1024 })).batches).toEqual([]);
    });

    it('answers NOT_FOUND for every call on an unknown shard', async () => {
      const engine = subject.engine;
      await engine.createShard('known');
      const shard = 'unknown/0';
      await expectErrorCode(engine.shardInfo(shard), ErrorCode.NotFound);
      await expectErrorCode(engine.deleteShard(shard), ErrorCode.NotFound);
      await expectErrorCode(engine.updateShardConfig(shard, { retentionMs: null }), ErrorCode.NotFound);
      await expectErrorCode(engine.append(shard, makeBatches(1)), ErrorCode.NotFound);
      await expectErrorCode(engine.read(shard, 0, { maxBytes: 1024 }), ErrorCode.NotFound);
      await expectErrorCode(engine.waitForData(shard, 0, 10), ErrorCode.NotFound);
      await expectErrorCode(engine.offsetForTimestamp(shard, 0), ErrorCode.NotFound);
      await expectErrorCode(engine.deleteBefore(shard, 0), ErrorCode.NotFound);
      expect(await engine.listShards()).toEqual(['known']);
    });

    it.each(BAD_SHARD_NAMES.map((name) => [name]))(
      'refuses shard name %j with INVALID_ARGUMENT',
      async (name) => {
        const engine = subject.engine;
        await expectErrorCode(engine.createShard(name), ErrorCode.InvalidArgument);
        await expectErrorCode(engine.shardInfo(name), ErrorCode.InvalidArgument);
        await expectErrorCode(engine.append(name, makeBatches(1)), ErrorCode.InvalidArgument);
        await expectErrorCode(engine.read(name, 0, { maxBytes: 1024 }), ErrorCode.InvalidArgument);
        await expectErrorCode(engine.deleteShard(name), ErrorCode.InvalidArgument);
        expect(await engine.listShards()).toEqual([]);
      },
    );

    it.each(BAD_CONFIGS.map((config) => [config]))(
      'refuses config %j with INVALID_ARGUMENT and changes nothing',
      async (config) => {
        const engine = subject.engine;
        await expectErrorCode(engine.createShard('orders/0', config), ErrorCode.InvalidArgument);
        expect(await engine.listShards()).toEqual([]);
        const info = await engine.createShard('orders/0', { segmentBytes: 4096 });
        await expectErrorCode(engine.updateShardConfig('orders/0', config), ErrorCode.InvalidArgument);
        expect(await engine.shardInfo('orders/0')).toEqual(info);
      },
    );
  });
}
