import type { AdminResource } from '@robustmq/core';
import type { KafkaBroker } from '../broker/handler.js';
import { groupsAdminResource } from './admin.js';
import { GroupService } from './group-service.js';

export { GroupService, type OffsetResetTarget, type PartitionLag } from './group-service.js';
export { GroupCoordinator, joinError, syncError, type CoordinatorOptions } from './coordinator.js';
export { OffsetStore, GROUPS_PREFIX, type CommittedOffset } from './offset-store.js';
export { systemClock, type Clock, type Timer } from './clock.js';
export type * from './types.js';

/** The broker's consumer groups (coordinator and committed offsets), created on first use. */
export function groupService(broker: KafkaBroker): GroupService {
  return broker.service(
    'groups',
    () =>
      new GroupService({
        meta: broker.context.meta,
        storage: broker.context.storage,
        partitionCount: async (topic) => (await broker.catalog.get(topic))?.partitions ?? null,
        coordinates: (groupId) => broker.cluster.coordinates(groupId),
        coordinatorOf: (groupId) => broker.cluster.coordinatorOf(groupId),
        onCoordinatorsChange: (listener) => broker.cluster.onChange(listener),
        logger: broker.logger.child({ component: 'groups' }),
        metrics: broker.context.metrics,
        minSessionTimeoutMs: broker.settings.groupMinSessionTimeoutMs,
        maxSessionTimeoutMs: broker.settings.groupMaxSessionTimeoutMs,
        initialRebalanceDelayMs: broker.settings.groupInitialRebalanceDelayMs,
        maxGroupSize: broker.settings.groupMaxSize,
      }),
  );
}

/** The `groups` resource for the admin API (`ProtocolPlugin.adminResources()`). */
export function groupsAdmin(broker: KafkaBroker): AdminResource {
  return groupsAdminResource(() => groupService(broker));
}
