import { defineStorageEngine } from '@robustmq/core';
import { MemoryStorageEngine } from './engine.js';

export { MemoryStorageEngine, type MemoryStorageOptions } from './engine.js';

/**
 * The memory engine as the server loads it (`storage.engine = "@robustmq/storage-memory"`). It has
 * no settings of its own and ignores `dataDir`.
 */
export default defineStorageEngine({
  name: 'memory',
  open: (options) =>
    Promise.resolve(new MemoryStorageEngine({ logger: options.logger.child({ storage: 'memory' }) })),
});
