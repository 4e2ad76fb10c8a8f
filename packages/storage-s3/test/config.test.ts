import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, silentLogger } from '@robustmq/core';
import { DEFAULT_SETTINGS } from '@robustmq/journal';
import { expectStoredBatches, makeBatches, readAll, withOffsets } from '@robustmq/storage-conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tiered, { DEFAULT_TIERING_SETTINGS, TieredStorage, parseTieredConfig } from '../src/index.js';
import { recordingMetrics } from './helpers.js';
import { BUCKET, LocalS3 } from './local-s3.js';

function configError(section: Record<string, unknown>): ConfigError {
  try {
    parseTieredConfig(section);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`no ConfigError for ${JSON.stringify(section)}`);
}

describe('[storage] section of the tiered engine', () => {
  it('needs only a bucket, and defaults the rest', () => {
    expect(parseTieredConfig({ bucket: 'segments' })).toEqual({
      tiering: { ...DEFAULT_TIERING_SETTINGS, bucket: 'segments' },
      journal: DEFAULT_SETTINGS,
    });
  });

  it('reads every setting, passing the journal its own', () => {
    const parsed = parseTieredConfig({
      bucket: 'segments',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      prefix: 'cluster-a',
      access_key_id: 'AK',
      secret_access_key: 'SK',
      session_token: 'TOKEN',
      force_path_style: true,
      local_retention_ms: 0,
      local_retention_bytes: -1,
      upload_concurrency: 2,
      tiering_interval_ms: 5000,
      retry_backoff_ms: 200,
      request_timeout_ms: 10_000,
      group_commit_ms: 5,
      default_segment_bytes: 1 << 20,
    });
    expect(parsed.tiering).toEqual({
      bucket: 'segments',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      prefix: 'cluster-a/',
      credentials: { accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOKEN' },
      forcePathStyle: true,
      localRetentionMs: 0,
      localRetentionBytes: null,
      uploadConcurrency: 2,
      tieringIntervalMs: 5000,
      retryBackoffMs: 200,
      requestTimeoutMs: 10_000,
    });
    expect(parsed.journal).toEqual({ ...DEFAULT_SETTINGS, groupCommitMs: 5, defaultSegmentBytes: 1 << 20 });
  });

  it('names the unknown or invalid setting', () => {
    const unknown = configError({ bucket: 'b', bucke: 'b' });
    expect(unknown.setting).toBe('bucke');
    expect(unknown.message).toMatch(/unknown setting.*local_retention_ms.*group_commit_ms/);
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'bucket'],
      [{ bucket: '' }, 'bucket'],
      [{ bucket: 'b', endpoint: 'ftp://host' }, 'endpoint'],
      [{ bucket: 'b', endpoint: 'not a url' }, 'endpoint'],
      [{ bucket: 'b', local_retention_ms: -5 }, 'local_retention_ms'],
      [{ bucket: 'b', local_retention_bytes: 1.5 }, 'local_retention_bytes'],
      [{ bucket: 'b', upload_concurrency: 0 }, 'upload_concurrency'],
      [{ bucket: 'b', force_path_style: 'yes' }, 'force_path_style'],
      [{ bucket: 'b', prefix: 3 }, 'prefix'],
      [{ bucket: 'b', access_key_id: 'AK' }, 'secret_access_key'],
      [{ bucket: 'b', secret_access_key: 'SK' }, 'access_key_id'],
      [{ bucket: 'b', session_token: 'T' }, 'session_token'],
      [{ bucket: 'b', default_durability: 'sometimes' }, 'default_durability'],
    ];
    for (const [section, setting] of cases)
      expect(configError(section).setting, JSON.stringify(section)).toBe(setting);
  });
});

describe('the default export', () => {
  let s3: LocalS3;
  let dir: string;
  beforeAll(async () => {
    s3 = await LocalS3.start();
    dir = await mkdtemp(join(tmpdir(), 'robustmq-tiered-definition-'));
  });
  afterAll(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is the "tiered" engine, opened from a [storage] section', async () => {
    expect(tiered.name).toBe('tiered');
    const metrics = recordingMetrics();
    const engine = await tiered.open({
      dataDir: dir,
      config: {
        bucket: BUCKET,
        endpoint: s3.endpoint,
        force_path_style: true,
        access_key_id: 'S3RVER',
        secret_access_key: 'S3RVER',
        prefix: 'definition',
        local_retention_ms: 0,
        default_segment_bytes: 2048,
      },
      logger: silentLogger,
      metrics,
    });
    try {
      await engine.createShard('s');
      expect((await engine.shardInfo('s')).config.segmentBytes).toBe(2048);
      const batches = makeBatches(40, { bytes: 300 });
      for (const batch of batches) await engine.append('s', [batch]);
      expect(engine).toBeInstanceOf(TieredStorage);
      await (engine as TieredStorage).tierNow();
      expect((await s3.keys('definition/shards/s/')).length).toBeGreaterThan(3);
      expect(metrics.count('robustmq_tiering_offloaded_segments_total')).toBeGreaterThan(3);
      expectStoredBatches(await readAll(engine, 's'), withOffsets(batches));
    } finally {
      await engine.close();
    }
  });

  it('fails to open with a ConfigError naming a bad setting', async () => {
    await expect(
      tiered.open({
        dataDir: dir,
        config: { bucket: BUCKET, upload_concurrency: 'many' },
        logger: silentLogger,
        metrics: recordingMetrics(),
      }),
    ).rejects.toMatchObject({ setting: 'upload_concurrency' });
  });
});
