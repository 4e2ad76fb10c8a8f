import type { Topic } from '../../src/index.js';

/** A one-partition topic named `name` with `configs`, for tests of what is read from configs. */
export function topicWith(configs: Record<string, string> = {}, name = 't'): Topic {
  return {
    name,
    partitions: 1,
    storageClass: 'file',
    retentionMs: null,
    retentionBytes: null,
    configs,
    createdAt: 0,
  };
}
