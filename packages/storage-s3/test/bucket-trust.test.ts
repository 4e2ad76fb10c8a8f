import { readFile } from 'node:fs/promises';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ErrorCode, type ShardConfig, type StoredBatch } from '@robustmq/core';
import {
  expectErrorCode,
  expectStoredBatches,
  makeBatches,
  readAll,
  withOffsets,
} from '@robustmq/storage-conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TieredStorage } from '../src/index.js';
import { basesOf, localLogs, prefixFor, recordingMetrics, useEngines } from './helpers.js';
import { BUCKET, LocalS3 } from './local-s3.js';

let s3: LocalS3;
beforeAll(async () => {
  s3 = await LocalS3.start();
});
afterAll(async () => {
  await s3.stop();
});
const { tempDir, open } = useEngines(() => s3);

const SMALL: Partial<ShardConfig> = { segmentBytes: 4096, retentionMs: null, retentionBytes: null };

/**
 * Creates `shard` and appends `count` batches of 500 bytes one by one, each batch's bytes all
 * `fill`: shards filled alike but for `fill` have segments of the same offsets and sizes.
 */
async function fill(
  engine: TieredStorage,
  shard: string,
  count: number,
  fill: number,
  firstTimestamp = 1_700_000_000_000,
): Promise<StoredBatch[]> {
  await engine.createShard(shard, SMALL);
  const batches = makeBatches(count, { recordCount: 2, bytes: 500, firstTimestamp, timestampStep: 1 }).map(
    (batch) => ({ ...batch, data: new Uint8Array(batch.data.length).fill(fill) }),
  );
  for (const batch of batches) await engine.append(shard, [batch]);
  return withOffsets(batches, 0);
}

function keyOf(dir: string, shard: string, base: number): string {
  return `${prefixFor(dir)}shards/${shard}/${String(base).padStart(20, '0')}.log`;
}

async function objectBytes(key: string): Promise<Uint8Array> {
  const got = await s3.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return got.Body!.transformToByteArray();
}

/** Writes an object from outside the engine, with no metadata. */
async function putObject(key: string, body: Uint8Array): Promise<void> {
  await s3.client().send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

describe('objects in the bucket that are not the segment they stand for', () => {
  it('are never served: a copy of another shard, or a cut-short copy, fails with CORRUPT', async () => {
    const dir = await tempDir();
    const engine = await open(dir, { localRetentionMs: 0 });
    const stored = await fill(engine, 's', 40, 1);
    await fill(engine, 't', 40, 2);
    await engine.tierNow();
    const sealed = await engine.journal.sealedSegments('s');
    expect(sealed.length).toBeGreaterThanOrEqual(3);
    expect(sealed.every((s) => s.offloaded)).toBe(true);
    const [first, second, third] = sealed;
    // Same offsets and sizes, other bytes: every frame of it is sound, only not this shard's.
    const foreign = await objectBytes(keyOf(dir, 't', second!.baseOffset));
    expect(foreign.length).toBe(second!.size);
    await putObject(keyOf(dir, 's', second!.baseOffset), foreign);
    await expectErrorCode(engine.read('s', second!.baseOffset, { maxBytes: 100_000 }), ErrorCode.Corrupt);
    await expectErrorCode(engine.read('s', second!.endOffset - 1, { maxBytes: 1 }), ErrorCode.Corrupt);

    // Cut short: even its sound beginning is not trusted.
    const own = await objectBytes(keyOf(dir, 's', third!.baseOffset));
    await putObject(keyOf(dir, 's', third!.baseOffset), own.subarray(0, own.length - 100));
    await expectErrorCode(engine.read('s', third!.baseOffset, { maxBytes: 1 }), ErrorCode.Corrupt);
    await expectErrorCode(engine.read('s', third!.endOffset - 1, { maxBytes: 1 }), ErrorCode.Corrupt);

    // The segments whose objects are intact still read back.
    const intact = stored.filter((b) => b.baseOffset < first!.endOffset);
    for (const batch of intact) {
      expectStoredBatches((await engine.read('s', batch.baseOffset, { maxBytes: 1 })).batches, [batch]);
    }
  });

  it('are uploaded over before the local copy goes, even when they hold the same bytes', async () => {
    const dir = await tempDir();
    // The right bytes, put there by something else (a restore that keeps no metadata).
    let engine = await open(dir, { localRetentionMs: null });
    const stored = await fill(engine, 's', 30, 1);
    const sealed = await engine.journal.sealedSegments('s');
    await engine.close();
    for (const segment of sealed) {
      await putObject(keyOf(dir, 's', segment.baseOffset), await readFile(segment.logPath));
    }
    engine = await open(dir, { localRetentionMs: 0 });
    await engine.tierNow();
    expect((await engine.journal.sealedSegments('s')).every((s) => s.offloaded)).toBe(true);
    expectStoredBatches(await readAll(engine, 's'), stored);
  });
});

describe('a copy that leaves the bucket after its upload was confirmed', () => {
  it('is uploaded again before the local log is dropped', async () => {
    const dir = await tempDir();
    const engine = await open(dir, { localRetentionMs: 1000 });
    // Recent records: uploaded at once, dropped locally only a second later.
    const stored = await fill(engine, 's', 30, 1, Date.now());
    await engine.tierNow();
    const sealed = await engine.journal.sealedSegments('s');
    expect(sealed.length).toBeGreaterThan(3);
    expect(sealed.every((s) => !s.offloaded)).toBe(true);
    const keys = sealed.map((s) => keyOf(dir, 's', s.baseOffset));
    expect(await s3.keys(`${prefixFor(dir)}shards/s/`)).toEqual(keys);
    // Gone meanwhile (a lifecycle rule, someone cleaning the bucket).
    for (const key of keys) await s3.client().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));

    await new Promise((resolve) => setTimeout(resolve, 1100));
    await engine.tierNow().catch(() => undefined);
    await engine.tierNow();
    expect((await engine.journal.sealedSegments('s')).every((s) => s.offloaded)).toBe(true);
    expect(await localLogs(dir, 's')).toHaveLength(1);
    expect(await s3.keys(`${prefixFor(dir)}shards/s/`)).toEqual(keys);
    expectStoredBatches(await readAll(engine, 's'), stored);
  });
});

describe('keys under the prefix that are no shard segment', () => {
  it('are left alone and do not stop tiering or the clean-up of deleted shards', async () => {
    const dir = await tempDir();
    let engine = await open(dir, { localRetentionMs: 0 });
    await fill(engine, 'gone', 30, 1);
    const kept = await fill(engine, 'kept', 30, 2);
    await engine.tierNow();
    // Deleted while the bucket is down: its objects stay for the next start to remove.
    await s3.pause();
    try {
      await engine.deleteShard('gone');
    } finally {
      await s3.resume();
    }
    await engine.close();
    const stranger = `${prefixFor(dir)}shards/not a shard/${'0'.padStart(20, '0')}.log`;
    await putObject(stranger, Buffer.from('someone else'));

    engine = await open(dir, { localRetentionMs: 0 });
    await engine.tierNow();
    expect(await s3.keys(`${prefixFor(dir)}shards/gone/`)).toEqual([]);
    expect(Buffer.from(await objectBytes(stranger)).toString()).toBe('someone else');
    expect(basesOf(await s3.keys(`${prefixFor(dir)}shards/kept/`))).toEqual(
      (await engine.journal.sealedSegments('kept')).map((s) => s.baseOffset),
    );
    expectStoredBatches(await readAll(engine, 'kept'), kept);
  });
});

describe('while the bucket is down', () => {
  it('waits out the backoff instead of trying again on every sealed segment', async () => {
    const dir = await tempDir();
    const metrics = recordingMetrics();
    const engine = await open(dir, {
      localRetentionMs: 0,
      retryBackoffMs: 60_000,
      tieringIntervalMs: 60_000,
      metrics,
    });
    await engine.createShard('s', SMALL);
    const batches = makeBatches(60, { recordCount: 2, bytes: 500, firstTimestamp: 1_700_000_000_000 });
    await s3.pause();
    try {
      for (const batch of batches.slice(0, 10)) await engine.append('s', [batch]);
      await expectErrorCode(engine.tierNow(), ErrorCode.Unavailable);
      const failures = metrics.count('robustmq_tiering_failures_total', { operation: 'tier' });
      expect(failures).toBeGreaterThan(0);
      // About one segment sealed every 100 ms, each of which used to start a pass at once.
      for (const batch of batches.slice(10)) {
        await engine.append('s', [batch]);
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      expect((await engine.journal.sealedSegments('s')).length).toBeGreaterThan(6);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(metrics.count('robustmq_tiering_failures_total', { operation: 'tier' })).toBe(failures);
    } finally {
      await s3.resume();
    }
    // An explicit pass does not wait for the backoff.
    await engine.tierNow();
    const sealed = await engine.journal.sealedSegments('s');
    expect(sealed.every((s) => s.offloaded)).toBe(true);
    expect(basesOf(await s3.keys(`${prefixFor(dir)}shards/s/`))).toEqual(sealed.map((s) => s.baseOffset));
    expectStoredBatches(await readAll(engine, 's'), withOffsets(batches, 0));
  });
});
