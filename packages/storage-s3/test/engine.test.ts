import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
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
import { RecordingLogger, basesOf, localLogs, prefixFor, recordingMetrics, useEngines } from './helpers.js';
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
const T0 = 1_700_000_000_000;

/** Appends `count` batches of 500 bytes one by one (so segments roll), timestamps T0 + 100 ms apart. */
async function fill(
  engine: TieredStorage,
  shard: string,
  count: number,
  options: { config?: Partial<ShardConfig>; firstTimestamp?: number; create?: boolean } = {},
): Promise<StoredBatch[]> {
  if (options.create !== false) await engine.createShard(shard, options.config ?? SMALL);
  const first = (await engine.shardInfo(shard)).nextOffset;
  const batches = makeBatches(count, {
    recordCount: 2,
    bytes: 500,
    firstTimestamp: options.firstTimestamp ?? T0,
    timestampStep: 100,
  });
  for (const batch of batches) await engine.append(shard, [batch]);
  return withOffsets(batches, first);
}

/** Object keys of one shard (not of shards nested under its name). */
async function shardKeys(dir: string, shard: string): Promise<string[]> {
  const prefix = `${prefixFor(dir)}shards/${shard}/`;
  return (await s3.keys(prefix)).filter((k) => !k.slice(prefix.length).includes('/'));
}

async function objectBytes(key: string): Promise<Uint8Array> {
  const got = await s3.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return got.Body!.transformToByteArray();
}

async function sealedBases(engine: TieredStorage, shard: string): Promise<number[]> {
  return (await engine.journal.sealedSegments(shard)).map((s) => s.baseOffset);
}

async function waitFor(what: string, check: () => Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('tiered storage', () => {
  it('uploads sealed segments byte for byte, then drops them locally and reads them from the bucket', async () => {
    const dir = await tempDir();
    // First with no local retention: everything sealed is uploaded and stays on disk.
    let engine = await open(dir, { localRetentionMs: null });
    const stored = await fill(engine, 'orders/0', 60);
    await engine.tierNow();
    const sealed = await engine.journal.sealedSegments('orders/0');
    expect(sealed.length).toBeGreaterThan(5);
    expect(sealed.every((s) => !s.offloaded)).toBe(true);
    const keys = await shardKeys(dir, 'orders/0');
    expect(keys).toEqual(
      sealed.map((s) => `${prefixFor(dir)}shards/orders/0/${String(s.baseOffset).padStart(20, '0')}.log`),
    );
    for (const [i, segment] of sealed.entries()) {
      expect(Buffer.from(await objectBytes(keys[i]!)).equals(await readFile(segment.logPath))).toBe(true);
    }
    await engine.close();

    // Reopened with local retention 0: the copies are checked, not uploaded again, and the local
    // logs go (as after a crash between upload and local delete).
    const metrics = recordingMetrics();
    engine = await open(dir, { localRetentionMs: 0, metrics });
    await engine.tierNow();
    expect(metrics.count('robustmq_tiering_uploaded_segments_total')).toBe(0);
    expect(metrics.count('robustmq_tiering_offloaded_segments_total')).toBe(sealed.length);
    expect((await engine.journal.sealedSegments('orders/0')).every((s) => s.offloaded)).toBe(true);
    expect(await localLogs(dir, 'orders%2F0')).toHaveLength(1);
    expect(await shardKeys(dir, 'orders/0')).toEqual(keys);

    expectStoredBatches(await readAll(engine, 'orders/0'), stored);
    expectStoredBatches(await readAll(engine, 'orders/0', { maxBytes: 1 }), stored);
    const middle = stored[17]!;
    expectStoredBatches((await engine.read('orders/0', middle.baseOffset + 1, { maxBytes: 1 })).batches, [
      middle,
    ]);
    expect(await engine.offsetForTimestamp('orders/0', middle.maxTimestamp)).toBe(middle.baseOffset);
    expect(metrics.count('robustmq_tiering_remote_read_bytes_total')).toBeGreaterThan(0);

    // And again after a reopen, from the offloaded segments' markers.
    await engine.close();
    engine = await open(dir, { localRetentionMs: 0 });
    expectStoredBatches(await readAll(engine, 'orders/0'), stored);
    const info = await engine.shardInfo('orders/0');
    expect([info.logStartOffset, info.nextOffset]).toEqual([0, 120]);
  });

  it('keeps the newest segments on disk up to local_retention_bytes', async () => {
    const dir = await tempDir();
    const engine = await open(dir, { localRetentionMs: null, localRetentionBytes: 10_000 });
    const stored = await fill(engine, 's', 60);
    await engine.tierNow();
    const sealed = await engine.journal.sealedSegments('s');
    const info = await engine.shardInfo('s');
    const offloaded = sealed.filter((s) => s.offloaded);
    const localBytes = info.sizeBytes - offloaded.reduce((n, s) => n + s.size, 0);
    expect(localBytes).toBeLessThanOrEqual(10_000);
    expect(offloaded.length).toBeGreaterThan(0);
    expect(offloaded.length).toBeLessThan(sealed.length);
    // The oldest go first.
    expect(sealed.map((s) => s.offloaded)).toEqual(sealed.map((_, i) => i < offloaded.length));
    // Total size and retention still count every segment, local or not.
    expect(info.sizeBytes).toBeGreaterThan(30_000);
    expectStoredBatches(await readAll(engine, 's'), stored);
  });

  it('keeps segments with recent records on disk for local_retention_ms', async () => {
    const dir = await tempDir();
    const engine = await open(dir, { localRetentionMs: 60_000 });
    const old = await fill(engine, 's', 30, { firstTimestamp: Date.now() - 3_600_000 });
    const recent = await fill(engine, 's', 30, { firstTimestamp: Date.now(), create: false });
    await engine.tierNow();
    const now = Date.now();
    const sealed = await engine.journal.sealedSegments('s');
    expect(sealed.some((s) => s.offloaded)).toBe(true);
    expect(sealed.some((s) => !s.offloaded)).toBe(true);
    for (const segment of sealed) expect(segment.offloaded).toBe(segment.maxTimestamp < now - 60_000);
    expectStoredBatches(await readAll(engine, 's'), [...old, ...recent]);
  });

  it('deletes objects with deleteBefore, time and size retention, and deleteShard', async () => {
    const dir = await tempDir();
    const engine = await open(dir, { localRetentionMs: 0 });
    const stored = await fill(engine, 'a', 60);
    const nested = await fill(engine, 'a/b', 30);
    await engine.tierNow();
    expect(basesOf(await shardKeys(dir, 'a'))).toEqual(await sealedBases(engine, 'a'));

    // deleteBefore drops whole segments below the new start, locally and in the bucket.
    expect(await engine.deleteBefore('a', 41)).toBe(41);
    const afterDelete = basesOf(await shardKeys(dir, 'a'));
    expect(afterDelete).toEqual(await sealedBases(engine, 'a'));
    expect(afterDelete[0]).toBeGreaterThan(0);
    expect(afterDelete[0]).toBeLessThanOrEqual(41);
    await expectErrorCode(engine.read('a', 40, { maxBytes: 1024 }), ErrorCode.OffsetOutOfRange);
    expectStoredBatches(
      await readAll(engine, 'a'),
      stored.filter((b) => b.baseOffset + b.recordCount > 41),
    );

    // Time retention: batches up to T0 + 3000 ms (offsets below 62) are older than 1 s at T0 + 4050.
    await engine.updateShardConfig('a', { retentionMs: 1000 });
    await engine.enforceRetention(T0 + 4050);
    const afterTime = basesOf(await shardKeys(dir, 'a'));
    expect(afterTime).toEqual(await sealedBases(engine, 'a'));
    const start = (await engine.shardInfo('a')).logStartOffset;
    expect(start).toBeGreaterThan(afterDelete[0]!);
    expect(start).toBeLessThanOrEqual(62);
    expectStoredBatches(
      await readAll(engine, 'a'),
      stored.filter((b) => b.baseOffset >= start),
    );

    // Size retention counts offloaded segments too, and keeps the newest 8000 bytes.
    const beforeSize = (await engine.shardInfo('a')).sizeBytes;
    await engine.updateShardConfig('a', { retentionMs: null, retentionBytes: 8000 });
    await engine.enforceRetention(Date.now());
    const afterSize = (await engine.shardInfo('a')).sizeBytes;
    expect(afterSize).toBeLessThan(beforeSize);
    expect(afterSize).toBeGreaterThanOrEqual(8000);
    expect(basesOf(await shardKeys(dir, 'a'))).toEqual(await sealedBases(engine, 'a'));

    // Deleting a shard deletes its objects and nobody else's.
    await engine.deleteShard('a');
    expect(await shardKeys(dir, 'a')).toEqual([]);
    expect(basesOf(await shardKeys(dir, 'a/b'))).toEqual(await sealedBases(engine, 'a/b'));
    expectStoredBatches(await readAll(engine, 'a/b'), nested);
  });

  it('replaces a stale object under a segment key instead of trusting it', async () => {
    const dir = await tempDir();
    const key = `${prefixFor(dir)}shards/s/${'0'.padStart(20, '0')}.log`;
    await s3.client().send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.alloc(4000, 1) }));
    const engine = await open(dir, { localRetentionMs: 0 });
    const stored = await fill(engine, 's', 30);
    await engine.tierNow();
    const [first] = await engine.journal.sealedSegments('s');
    expect(first?.offloaded).toBe(true);
    expect((await objectBytes(key)).length).toBe(first?.size);
    expectStoredBatches(await readAll(engine, 's'), stored);
  });

  it('removes objects of shards deleted while the bucket was down at the next start', async () => {
    const dir = await tempDir();
    let engine = await open(dir, { localRetentionMs: 0 });
    await fill(engine, 'gone', 30);
    const kept = await fill(engine, 'kept', 30);
    await engine.tierNow();
    expect((await shardKeys(dir, 'gone')).length).toBeGreaterThan(0);
    await s3.pause();
    try {
      await engine.deleteShard('gone');
    } finally {
      await s3.resume();
    }
    expect((await shardKeys(dir, 'gone')).length).toBeGreaterThan(0);
    await engine.close();
    engine = await open(dir, { localRetentionMs: 0 });
    await engine.tierNow();
    expect(await shardKeys(dir, 'gone')).toEqual([]);
    expect(basesOf(await shardKeys(dir, 'kept'))).toEqual(await sealedBases(engine, 'kept'));
    expectStoredBatches(await readAll(engine, 'kept'), kept);
  });

  it('fails old reads with UNAVAILABLE while the bucket is down, serves recent ones, and resumes uploads', async () => {
    const dir = await tempDir();
    const engine = await open(dir, { localRetentionMs: 0, retryBackoffMs: 50, tieringIntervalMs: 500 });
    const before = await fill(engine, 's', 40);
    await engine.tierNow();
    const offloaded = await engine.journal.sealedSegments('s');
    expect(offloaded.every((s) => s.offloaded)).toBe(true);

    await s3.pause();
    let after: StoredBatch[];
    try {
      await expectErrorCode(engine.read('s', 0, { maxBytes: 1024 }), ErrorCode.Unavailable);
      await expectErrorCode(engine.offsetForTimestamp('s', T0), ErrorCode.Unavailable);
      // The active segment is local.
      const last = before.at(-1)!;
      expectStoredBatches((await engine.read('s', last.baseOffset, { maxBytes: 1024 })).batches, [last]);
      // Appends go on; the segments they seal stay local, and reading them works.
      after = await fill(engine, 's', 40, { create: false });
      await expectErrorCode(engine.tierNow(), ErrorCode.Unavailable);
      const sealed = await engine.journal.sealedSegments('s');
      const stuck = sealed.filter((s) => !s.offloaded);
      expect(stuck.length).toBeGreaterThan(3);
      const from = stuck[0]!.baseOffset;
      expectStoredBatches(
        await readAll(engine, 's', { from }),
        [...before, ...after].filter((b) => b.baseOffset >= from),
      );
    } finally {
      await s3.resume();
    }

    // Tiering retries on its own once the bucket is back.
    await waitFor('the segments sealed while the bucket was down to be offloaded', async () =>
      (await engine.journal.sealedSegments('s')).every((s) => s.offloaded),
    );
    expect(basesOf(await shardKeys(dir, 's'))).toEqual(await sealedBases(engine, 's'));
    expectStoredBatches(await readAll(engine, 's'), [...before, ...after]);
  });
});

describe('what tiering logs', () => {
  it('logs no error for uploads that went well, and a readable warning per failure while the bucket is down', async () => {
    const dir = await tempDir();
    const logger = new RecordingLogger();
    const engine = await open(dir, {
      localRetentionMs: 0,
      retryBackoffMs: 50,
      tieringIntervalMs: 500,
      logger,
    });
    const before = await fill(engine, 's', 30);
    await engine.tierNow();
    expect((await engine.journal.sealedSegments('s')).every((s) => s.offloaded)).toBe(true);
    // Every first upload asks for its key and finds nothing (a 404): expected, not a problem.
    expect(logger.at('error')).toEqual([]);
    expect(logger.at('warn')).toEqual([]);

    await s3.pause();
    let after: StoredBatch[];
    try {
      await expectErrorCode(engine.read('s', 0, { maxBytes: 1024 }), ErrorCode.Unavailable);
      after = await fill(engine, 's', 30, { create: false });
      await expectErrorCode(engine.tierNow(), ErrorCode.Unavailable);
    } finally {
      await s3.resume();
    }
    await waitFor('the segments sealed while the bucket was down to be offloaded', async () =>
      (await engine.journal.sealedSegments('s')).every((s) => s.offloaded),
    );
    expectStoredBatches(await readAll(engine, 's'), [...before, ...after]);

    expect(logger.at('error')).toEqual([]);
    const warnings = logger.at('warn');
    expect(warnings.length).toBeGreaterThan(0);
    for (const line of warnings) {
      expect(line.message).toBe('tiering failed; will retry');
      expect((line.fields.err as Error).message).toMatch(/the bucket cannot serve now: .*ECONNREFUSED/);
    }
    expect(JSON.stringify(logger.lines)).not.toContain('[object Object]');
  });
});

describe('a shard directory after tiering', () => {
  it('holds index files and markers for offloaded segments, and the log only for local ones', async () => {
    const dir = await tempDir();
    const engine = await open(dir, { localRetentionMs: 0 });
    await fill(engine, 's', 30);
    await engine.tierNow();
    const sealed = await engine.journal.sealedSegments('s');
    for (const segment of sealed) {
      const stem = join(dir, 'shards', 's', String(segment.baseOffset).padStart(20, '0'));
      await expect(readFile(`${stem}.log`)).rejects.toThrow(/ENOENT/);
      expect((await readFile(`${stem}.index`)).length % 8).toBe(0);
      expect(JSON.parse(await readFile(`${stem}.offloaded`, 'utf8'))).toMatchObject({
        size: segment.size,
        endOffset: segment.endOffset,
      });
    }
  });
});
