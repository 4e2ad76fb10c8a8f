import { describeStorageEngine } from '@robustmq/storage-conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTieredStorage } from '../src/index.js';
import { prefixFor, recordingMetrics } from './helpers.js';
import { LocalS3 } from './local-s3.js';

// Default tiering settings: sealed segments are uploaded, and dropped locally only an hour after
// their newest record. The suite's records are stamped now or in 2023, so both kinds occur.
let s3: LocalS3;
const metrics = recordingMetrics();
beforeAll(async () => {
  s3 = await LocalS3.start();
});
afterAll(async () => {
  await s3.stop();
});

describeStorageEngine('tiered (default settings)', {
  open: (dir) => openTieredStorage({ ...s3.settings(prefixFor(dir)), dir, metrics }),
  persistent: true,
});

describe('the default run above', () => {
  it('uploaded sealed segments', () => {
    expect(metrics.count('robustmq_tiering_uploaded_segments_total')).toBeGreaterThan(0);
  });
});
