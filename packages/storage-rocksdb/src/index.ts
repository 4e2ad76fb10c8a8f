import { defineStorageEngine } from '@robustmq/core';
import { parseSettings } from './engine-config.js';
import { RocksDbStorageEngine } from './engine.js';

export { RocksDbStorageEngine, type RocksDbStorageOptions } from './engine.js';
export { DEFAULT_SETTINGS, parseSettings, type RocksDbSettings } from './engine-config.js';

/**
 * The RocksDB engine as the server loads it (`storage.engine = "@robustmq/storage-rocksdb"`). Its
 * `[storage]` settings are `group_commit_ms` and `group_commit_bytes`; any other key is a
 * ConfigError naming it.
 */
export default defineStorageEngine({
  name: 'rocksdb',
  open: async (options) => {
    const settings = parseSettings(options.config);
    return await RocksDbStorageEngine.open({
      dataDir: options.dataDir,
      ...settings,
      logger: options.logger.child({ storage: 'rocksdb' }),
      metrics: options.metrics,
    });
  },
});
