import { describeStorageEngine } from '@robustmq/storage-conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTieredStorage } from '../src/index.js';
import { prefixFor, recordingMetrics } from './helpers.js';
import { LocalS3 } from './local-s3.js';

// Tiering as eager as it gets: every sealed segment is uploaded at once and dropped locally as soon
// as its upload is confirmed, so the suite's reads of older offsets race the offloads and mostly go
// to the bucket. (The suite's retention, reopen and config tests use segments of 1-4 KiB.)
let s3: LocalS3;
const metrics = recordingMetrics();
beforeAll(async () => {
  s3 = await LocalS3.start();
});
afterAll(async () => {
  await s3.stop();
});

describeStorageEngine('tiered (eager tiering)', {
  open: (dir) =>
    openTieredStorage({
      ...s3.settings(prefixFor(dir)),
      dir,
      localRetentionMs: 0,
      localRetentionBytes: 0,
      retryBackoffMs: 50,
      metrics,
    }),
  persistent: true,
});

describe('the eager run above', () => {
  it('uploaded segments, dropped them locally and read them back from the bucket', () => {
    expect(metrics.count('robustmq_tiering_uploaded_segments_total')).toBeGreaterThan(50);
    expect(metrics.count('robustmq_tiering_offloaded_segments_total')).toBeGreaterThan(50);
    expect(metrics.count('robustmq_tiering_remote_read_bytes_total')).toBeGreaterThan(0);
    expect(metrics.count('robustmq_tiering_deleted_objects_total')).toBeGreaterThan(0);
  });
});
