/**
 * The APIs this broker answers, with the versions it supports: ApiVersions answers from this
 * table, and the connection routes each request through it.
 */
import type { ApiHandler } from './handler.js';
import { handleAlterConfigs } from './handlers/alter-configs.js';
import { handleApiVersions } from './handlers/api-versions.js';
import { handleCreatePartitions } from './handlers/create-partitions.js';
import { handleCreateTopics } from './handlers/create-topics.js';
import { handleDeleteRecords } from './handlers/delete-records.js';
import { handleDeleteTopics } from './handlers/delete-topics.js';
import { handleDescribeCluster } from './handlers/describe-cluster.js';
import { handleDescribeConfigs } from './handlers/describe-configs.js';
import { handleFetch } from './handlers/fetch.js';
import { handleIncrementalAlterConfigs } from './handlers/incremental-alter-configs.js';
import { handleListOffsets } from './handlers/list-offsets.js';
import { handleMetadata } from './handlers/metadata.js';
import { handleOffsetForLeaderEpoch } from './handlers/offset-for-leader-epoch.js';
import { handleProduce } from './handlers/produce.js';
import { GROUP_APIS } from './group-apis.js';

/** One supported API. */
export interface ApiEntry {
  readonly apiKey: number;
  /** For logs and the per-API request metric. */
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  // Each handler is typed by its own request and response; the table holds them all.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly handler: ApiHandler<any, any>;
  /** False when this request gets no response (Produce with acks=0). */
  readonly responds?: (request: unknown) => boolean;
  /** Answered before SASL authentication completes. */
  readonly beforeAuth?: boolean;
  /** Served by the group coordinator: a failure of storage answers COORDINATOR_NOT_AVAILABLE. */
  readonly coordinator?: boolean;
}

const OWN_APIS: readonly ApiEntry[] = [
  {
    // Produce v0-2 (message sets of magic 0/1) is refused per partition with INVALID_RECORD, but
    // advertised: librdkafka up to 2.11 uses gzip, snappy and lz4 only when the broker lists
    // Produce v0.
    apiKey: 0,
    name: 'Produce',
    minVersion: 0,
    maxVersion: 11,
    handler: handleProduce,
    responds: (request) => (request as { acks: number }).acks !== 0,
  },
  { apiKey: 1, name: 'Fetch', minVersion: 4, maxVersion: 12, handler: handleFetch },
  { apiKey: 2, name: 'ListOffsets', minVersion: 1, maxVersion: 9, handler: handleListOffsets },
  { apiKey: 3, name: 'Metadata', minVersion: 0, maxVersion: 12, handler: handleMetadata },
  {
    apiKey: 18,
    name: 'ApiVersions',
    minVersion: 0,
    maxVersion: 4,
    handler: handleApiVersions,
    beforeAuth: true,
  },
  { apiKey: 19, name: 'CreateTopics', minVersion: 0, maxVersion: 7, handler: handleCreateTopics },
  { apiKey: 20, name: 'DeleteTopics', minVersion: 0, maxVersion: 6, handler: handleDeleteTopics },
  { apiKey: 21, name: 'DeleteRecords', minVersion: 0, maxVersion: 2, handler: handleDeleteRecords },
  {
    apiKey: 23,
    name: 'OffsetForLeaderEpoch',
    minVersion: 2,
    maxVersion: 4,
    handler: handleOffsetForLeaderEpoch,
  },
  { apiKey: 32, name: 'DescribeConfigs', minVersion: 0, maxVersion: 4, handler: handleDescribeConfigs },
  { apiKey: 33, name: 'AlterConfigs', minVersion: 0, maxVersion: 2, handler: handleAlterConfigs },
  { apiKey: 37, name: 'CreatePartitions', minVersion: 0, maxVersion: 3, handler: handleCreatePartitions },
  {
    apiKey: 44,
    name: 'IncrementalAlterConfigs',
    minVersion: 0,
    maxVersion: 1,
    handler: handleIncrementalAlterConfigs,
  },
  { apiKey: 60, name: 'DescribeCluster', minVersion: 0, maxVersion: 1, handler: handleDescribeCluster },
];

/** Every supported API by key. */
export const DISPATCH: ReadonlyMap<number, ApiEntry> = new Map(
  [...OWN_APIS, ...GROUP_APIS].sort((a, b) => a.apiKey - b.apiKey).map((entry) => [entry.apiKey, entry]),
);
