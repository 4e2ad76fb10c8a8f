/**
 * `@robustmq/storage-s3`: tiered storage. The journal's sealed segments are uploaded to an
 * S3-compatible bucket and dropped locally past local retention; reads of old offsets fall through
 * to the bucket.
 *
 * The default export is the engine definition the server loads by package name
 * (`storage.engine = "@robustmq/storage-s3"`); {@link openTieredStorage} opens one directly.
 */
import { defineStorageEngine } from '@robustmq/core';
import { parseTieredConfig } from './config.js';
import { openTieredStorage } from './engine.js';

export { TieredStorage, openTieredStorage, type TieredStorageOptions } from './engine.js';
export {
  DEFAULT_TIERING_SETTINGS,
  TIERING_SETTING_NAMES,
  parseTieredConfig,
  type BucketCredentials,
  type TieredConfig,
  type TieringSettings,
} from './config.js';
export { SegmentBucket, type SegmentObject, type StoredObject } from './bucket.js';

/** The tiered engine: `options.config` is the server's `[storage]` section. */
const tiered = defineStorageEngine({
  name: 'tiered',
  async open(options) {
    const { tiering, journal } = parseTieredConfig(options.config);
    return openTieredStorage({
      ...tiering,
      journal,
      dir: options.dataDir,
      logger: options.logger,
      metrics: options.metrics,
    });
  },
});

export default tiered;
