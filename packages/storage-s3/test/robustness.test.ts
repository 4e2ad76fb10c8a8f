import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { ConfigError, ErrorCode, validateShardName, type ShardConfig } from '@robustmq/core';
import {
  expectErrorCode,
  expectStoredBatches,
  makeBatches,
  readAll,
  withOffsets,
} from '@robustmq/storage-conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTieredConfig, type TieredStorage } from '../src/index.js';
import { ENGINE_ID_FILE } from '../src/ownership.js';
import { RepeatLimiter } from '../src/repeats.js';
import { RecordingLogger, prefixFor, recordingMetrics, useEngines } from './helpers.js';
import { BUCKET, LocalS3 } from './local-s3.js';

let s3: LocalS3;
beforeAll(async () => {
  s3 = await LocalS3.start();
});
afterAll(async () => {
  await s3.stop();
});
const { tempDir, open } = useEngines(() => s3);

/** The longest shard name core lets through. */
const MAX_SHARD_NAME_LENGTH = 255;
/** S3's 1,024 bytes less `shards/`, the longest shard name, `/`, 20 digits and `.log`. */
const MAX_PREFIX_BYTES = 1024 - 7 - MAX_SHARD_NAME_LENGTH - 1 - 20 - 4;

const SMALL: Partial<ShardConfig> = { segmentBytes: 4096, retentionMs: null, retentionBytes: null };

async function fill(engine: TieredStorage, shard: string, count: number) {
  await engine.createShard(shard, SMALL);
  const batches = makeBatches(count, { recordCount: 2, bytes: 500, firstTimestamp: 1_700_000_000_000 });
  for (const batch of batches) await engine.append(shard, [batch]);
  return withOffsets(batches, 0);
}

async function objectText(key: string): Promise<string> {
  const got = await s3.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return got.Body!.transformToString();
}

async function deleteObject(key: string): Promise<void> {
  await s3.client().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
}

async function waitFor(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('gave up waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function failure(action: Promise<unknown>): Promise<unknown> {
  try {
    await action;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure, but the call succeeded');
}

describe('the prefix', () => {
  it('belongs to the engine that claimed it: another data directory over it refuses to start', async () => {
    const first = await tempDir();
    const prefix = prefixFor(first);
    const engine = await open(first, { localRetentionMs: 0 });
    const stored = await fill(engine, 'kafka/orders/0', 30);
    await engine.tierNow();
    const keys = await s3.keys(prefix);
    const owner = JSON.parse(await objectText(`${prefix}robustmq-owner.json`)) as Record<string, unknown>;
    expect(owner.engine).toBe((await readFile(join(first, ENGINE_ID_FILE), 'utf8')).trim());

    const second = await tempDir();
    const error = await failure(open(second, { prefix }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe('prefix');
    expect((error as Error).message).toContain(`"${prefix}" of bucket ${BUCKET} belongs to another engine`);
    expect((error as Error).message).toContain(first);
    expect((error as Error).message).toContain(`delete ${prefix}robustmq-owner.json`);
    // It wrote nothing, and the owner goes on as before.
    expect(await s3.keys(prefix)).toEqual(keys);
    expectStoredBatches(await readAll(engine, 'kafka/orders/0'), stored);

    // The same data directory is the same engine after a restart.
    await engine.close();
    const again = await open(first, { localRetentionMs: 0 });
    expectStoredBatches(await readAll(again, 'kafka/orders/0'), stored);
  });

  it('is adopted when it has no owner yet, as one written before owners existed', async () => {
    const dir = await tempDir();
    const prefix = prefixFor(dir);
    let engine = await open(dir, { localRetentionMs: 0 });
    const stored = await fill(engine, 's', 30);
    await engine.tierNow();
    await engine.close();
    await deleteObject(`${prefix}robustmq-owner.json`);
    await rm(join(dir, ENGINE_ID_FILE));

    engine = await open(dir, { localRetentionMs: 0 });
    expectStoredBatches(await readAll(engine, 's'), stored);
    const owner = JSON.parse(await objectText(`${prefix}robustmq-owner.json`)) as Record<string, unknown>;
    expect(owner.engine).toBe((await readFile(join(dir, ENGINE_ID_FILE), 'utf8')).trim());
  });

  it('is claimed once the bucket can be reached when it could not be at start', async () => {
    const dir = await tempDir();
    await s3.pause();
    let engine: TieredStorage;
    try {
      engine = await open(dir, { localRetentionMs: 0 });
    } finally {
      await s3.resume();
    }
    const stored = await fill(engine, 's', 30);
    await engine.tierNow();
    expect(await s3.keys(`${prefixFor(dir)}robustmq-owner.json`)).toHaveLength(1);
    expectStoredBatches(await readAll(engine, 's'), stored);
  });

  it('is refused at start when an object key could exceed 1,024 bytes', async () => {
    // Shard names are checked against the limit the key length is computed from.
    expect(() => validateShardName('a'.repeat(MAX_SHARD_NAME_LENGTH))).not.toThrow();
    expect(() => validateShardName('a'.repeat(MAX_SHARD_NAME_LENGTH + 1))).toThrow();

    // Bytes count, not characters: 369 characters, 737 bytes, and the / added make one too many.
    const tooLong = `${'é'.repeat((MAX_PREFIX_BYTES - 1) / 2)}x`;
    const error = await failure(open(await tempDir(), { prefix: tooLong }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^prefix: is 738 bytes .* at most 737 fit/);
    expect(() => parseTieredConfig({ bucket: 'b', prefix: tooLong })).toThrow(/^prefix: is 738 bytes/);

    // The longest that fits makes keys of at most 1,024 bytes, with the longest shard name.
    const fits = `${'p'.repeat(99)}/`.repeat(7) + `${'q'.repeat(MAX_PREFIX_BYTES - 701)}/`;
    expect(Buffer.byteLength(fits)).toBe(MAX_PREFIX_BYTES);
    const engine = await open(await tempDir(), { prefix: fits, localRetentionMs: 0 });
    const shard = `${'s'.repeat(99)}/${'t'.repeat(99)}/${'u'.repeat(MAX_SHARD_NAME_LENGTH - 200)}`;
    const stored = await fill(engine, shard, 10);
    await engine.tierNow();
    const keys = await s3.keys(`${fits}shards/`);
    expect(keys.length).toBeGreaterThan(0);
    expect(Math.max(...keys.map((k) => Buffer.byteLength(k)))).toBe(1024);
    expectStoredBatches(await readAll(engine, shard), stored);
  });
});

describe('an offloaded segment whose object was deleted from the bucket', () => {
  it('fails reads of its offsets with CORRUPT, logged naming the object and shard', async () => {
    const dir = await tempDir();
    const logger = new RecordingLogger();
    const engine = await open(dir, { localRetentionMs: 0, logger });
    const stored = await fill(engine, 'orders/0', 30);
    await engine.tierNow();
    const [first, second] = await engine.journal.sealedSegments('orders/0');
    expect(first?.offloaded).toBe(true);
    const key = `${prefixFor(dir)}shards/orders/0/${'0'.padStart(20, '0')}.log`;
    await deleteObject(key);

    await expectErrorCode(engine.read('orders/0', 0, { maxBytes: 1024 }), ErrorCode.Corrupt);
    const [line] = logger.at('error');
    expect(line?.fields).toMatchObject({ key, shard: 'orders/0', baseOffset: 0 });
    // The other segments are still served.
    expectStoredBatches(
      await readAll(engine, 'orders/0', { from: second!.baseOffset }),
      stored.filter((b) => b.baseOffset >= second!.baseOffset),
    );
  });
});

describe('a failure repeating on every pass and shard', () => {
  it('is logged once, not per pass and shard (wrong credentials)', async () => {
    const dir = await tempDir();
    const logger = new RecordingLogger();
    const metrics = recordingMetrics();
    const engine = await open(dir, {
      credentials: { accessKeyId: 'WRONG', secretAccessKey: 'S3RVER' },
      retryBackoffMs: 10,
      logger,
      metrics,
    });
    for (const shard of ['a', 'b', 'c']) await fill(engine, shard, 10);
    await expectErrorCode(engine.tierNow(), ErrorCode.Unavailable);
    const failed = () => logger.lines.filter((line) => line.message === 'tiering failed; will retry');
    // Each shard retries on its own, after 10 ms, 20 ms, ...
    await waitFor(() =>
      ['a', 'b', 'c'].every((s) => failed().filter((l) => l.fields.shard === s).length >= 2),
    );
    expect(failed().length).toBeGreaterThanOrEqual(6);
    expect(failed().length).toBe(metrics.count('robustmq_tiering_failures_total', { operation: 'tier' }));
    // The rest went to debug.
    const warnings = failed().filter((line) => line.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect((warnings[0]?.fields.err as Error).message).toMatch(/InvalidAccessKeyId \(HTTP 403\)/);
  });

  it('is logged again after the interval, with how often it was held back', () => {
    let now = 0;
    const limiter = new RepeatLimiter(60_000, () => now);
    expect(limiter.admit('denied')).toEqual({ log: true, repeats: 0 });
    expect(limiter.admit('unreachable')).toEqual({ log: true, repeats: 0 });
    now = 59_999;
    for (let i = 0; i < 3; i++) expect(limiter.admit('denied')).toEqual({ log: false });
    now = 60_000;
    expect(limiter.admit('denied')).toEqual({ log: true, repeats: 3 });
    expect(limiter.admit('denied')).toEqual({ log: false });
  });
});
