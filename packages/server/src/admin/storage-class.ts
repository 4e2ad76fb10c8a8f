import type { StorageClass } from '@robustmq/core';
import { ApiError } from './errors.js';

/** What each of RobustMQ's own engines stores in; a node keeps every topic in its one engine. */
const ENGINE_CLASSES: Readonly<Record<string, StorageClass>> = {
  '@robustmq/journal': 'file',
  '@robustmq/storage-s3': 'tiered',
  '@robustmq/storage-rocksdb': 'rocksdb',
  '@robustmq/storage-memory': 'memory',
};

/**
 * The storage class of a new topic: the one this node's engine provides. A class the engine does
 * not provide is refused rather than recorded, since the topic would be stored elsewhere than it
 * says. An engine of another package (a remote journal node, a third-party engine) cannot be
 * checked: the given class, or `file`, is recorded.
 */
export function topicStorageClass(engine: string, wanted: StorageClass | undefined): StorageClass {
  const provided = ENGINE_CLASSES[engine];
  if (provided === undefined) return wanted ?? 'file';
  if (wanted !== undefined && wanted !== provided) {
    const needed = Object.keys(ENGINE_CLASSES).find((name) => ENGINE_CLASSES[name] === wanted);
    throw new ApiError(
      'INVALID_ARGUMENT',
      `this node stores every topic in ${engine} (storage class ${provided}); storage class ${wanted} ` +
        `needs a node whose [storage] engine is ${needed}`,
      'storageClass',
    );
  }
  return provided;
}
