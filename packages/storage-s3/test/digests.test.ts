import type * as crypto from 'node:crypto';
import type { ShardConfig } from '@robustmq/core';
import {
  expectErrorCode,
  expectStoredBatches,
  makeBatches,
  readAll,
  withOffsets,
} from '@robustmq/storage-conformance';
import { ErrorCode } from '@robustmq/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { useEngines } from './helpers.js';
import { LocalS3 } from './local-s3.js';

// Counts the segment logs hashed: the engine makes one MD5 per log it reads whole.
const hashed = vi.hoisted(() => ({ md5: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof crypto>();
  return {
    ...actual,
    createHash: (algorithm: string, options?: crypto.HashOptions) => {
      if (algorithm === 'md5') hashed.md5++;
      return actual.createHash(algorithm, options);
    },
  };
});

let s3: LocalS3;
beforeAll(async () => {
  s3 = await LocalS3.start();
});
afterAll(async () => {
  await s3.stop();
});
const { tempDir, open } = useEngines(() => s3);

const SMALL: Partial<ShardConfig> = { segmentBytes: 4096, retentionMs: null, retentionBytes: null };

describe('sealed segments waiting for the bucket', () => {
  it('are read and hashed once, not again on every retry', async () => {
    const dir = await tempDir();
    const engine = await open(dir, {
      localRetentionMs: 0,
      retryBackoffMs: 60_000,
      tieringIntervalMs: 60_000,
    });
    await engine.createShard('s', SMALL);
    const batches = makeBatches(30, { recordCount: 2, bytes: 500, firstTimestamp: 1_700_000_000_000 });
    await s3.pause();
    try {
      for (const batch of batches) await engine.append('s', [batch]);
      await expectErrorCode(engine.tierNow(), ErrorCode.Unavailable);
      const sealed = (await engine.journal.sealedSegments('s')).length;
      expect(sealed).toBeGreaterThan(3);
      const afterFirst = hashed.md5;
      for (let i = 0; i < 3; i++) await expectErrorCode(engine.tierNow(), ErrorCode.Unavailable);
      expect(hashed.md5).toBe(afterFirst);
    } finally {
      await s3.resume();
    }
    await engine.tierNow();
    expect((await engine.journal.sealedSegments('s')).every((s) => s.offloaded)).toBe(true);
    expectStoredBatches(await readAll(engine, 's'), withOffsets(batches, 0));
  });
});
