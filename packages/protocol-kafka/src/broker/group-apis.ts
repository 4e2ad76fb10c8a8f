/**
 * The dispatch entries of the consumer-group, offset, idempotent-producer and SASL APIs. Owned by
 * the groups side of this package (see handler.ts): add one entry per handler, with the versions
 * from ../../../../shared/notes/kafka.md, `beforeAuth: true` for SaslHandshake and
 * SaslAuthenticate, and `coordinator: true` for the group coordinator's APIs.
 */
import type { ApiEntry } from './dispatch.js';
import { handleDeleteGroups } from './handlers/delete-groups.js';
import { handleDescribeGroups } from './handlers/describe-groups.js';
import { handleFindCoordinator } from './handlers/find-coordinator.js';
import { handleHeartbeat } from './handlers/heartbeat.js';
import { handleInitProducerId } from './handlers/init-producer-id.js';
import { handleJoinGroup } from './handlers/join-group.js';
import { handleLeaveGroup } from './handlers/leave-group.js';
import { handleListGroups } from './handlers/list-groups.js';
import { handleOffsetCommit } from './handlers/offset-commit.js';
import { handleOffsetDelete } from './handlers/offset-delete.js';
import { handleOffsetFetch } from './handlers/offset-fetch.js';
import { handleSaslAuthenticate } from './handlers/sasl-authenticate.js';
import { handleSaslHandshake } from './handlers/sasl-handshake.js';
import { handleSyncGroup } from './handlers/sync-group.js';

export const GROUP_APIS: readonly ApiEntry[] = [
  {
    apiKey: 8,
    name: 'OffsetCommit',
    minVersion: 2,
    maxVersion: 9,
    handler: handleOffsetCommit,
    coordinator: true,
  },
  {
    apiKey: 9,
    name: 'OffsetFetch',
    minVersion: 1,
    maxVersion: 9,
    handler: handleOffsetFetch,
    coordinator: true,
  },
  {
    apiKey: 10,
    name: 'FindCoordinator',
    minVersion: 0,
    maxVersion: 6,
    handler: handleFindCoordinator,
    coordinator: true,
  },
  {
    apiKey: 11,
    name: 'JoinGroup',
    minVersion: 0,
    maxVersion: 9,
    handler: handleJoinGroup,
    coordinator: true,
  },
  {
    apiKey: 12,
    name: 'Heartbeat',
    minVersion: 0,
    maxVersion: 4,
    handler: handleHeartbeat,
    coordinator: true,
  },
  {
    apiKey: 13,
    name: 'LeaveGroup',
    minVersion: 0,
    maxVersion: 5,
    handler: handleLeaveGroup,
    coordinator: true,
  },
  {
    apiKey: 14,
    name: 'SyncGroup',
    minVersion: 0,
    maxVersion: 5,
    handler: handleSyncGroup,
    coordinator: true,
  },
  {
    apiKey: 15,
    name: 'DescribeGroups',
    minVersion: 0,
    maxVersion: 5,
    handler: handleDescribeGroups,
    coordinator: true,
  },
  {
    apiKey: 16,
    name: 'ListGroups',
    minVersion: 0,
    maxVersion: 5,
    handler: handleListGroups,
    coordinator: true,
  },
  {
    apiKey: 17,
    name: 'SaslHandshake',
    minVersion: 0,
    maxVersion: 1,
    handler: handleSaslHandshake,
    beforeAuth: true,
  },
  {
    apiKey: 22,
    name: 'InitProducerId',
    minVersion: 0,
    maxVersion: 5,
    handler: handleInitProducerId,
    coordinator: true,
  },
  {
    apiKey: 36,
    name: 'SaslAuthenticate',
    minVersion: 0,
    maxVersion: 2,
    handler: handleSaslAuthenticate,
    beforeAuth: true,
  },
  {
    apiKey: 42,
    name: 'DeleteGroups',
    minVersion: 0,
    maxVersion: 2,
    handler: handleDeleteGroups,
    coordinator: true,
  },
  {
    apiKey: 47,
    name: 'OffsetDelete',
    minVersion: 0,
    maxVersion: 0,
    handler: handleOffsetDelete,
    coordinator: true,
  },
];
