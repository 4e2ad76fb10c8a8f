/**
 * The conformance suite every RobustMQ StorageEngine runs unchanged, and helpers for engine
 * authors' own tests.
 */
export { describeStorageEngine } from './suite.js';
export type { StorageHarness } from './harness.js';
export {
  makeBatch,
  makeBatches,
  dataBytes,
  recordCount,
  endOffset,
  withOffsets,
  type MakeBatchesOptions,
} from './batches.js';
export {
  expectErrorCode,
  expectStoredBatch,
  expectStoredBatches,
  expectContiguous,
  firstDifference,
} from './assertions.js';
export { readAll, type ReadAllOptions } from './read-all.js';
export { settlesWithin, type Settlement } from './settle.js';
export { BAD_SHARD_NAMES } from './suites/shards.js';
