import type { Logger, MetaStore } from '@robustmq/core';
import { AclStore } from '../acl/acl-store.js';
import { UserStore } from '../auth/users.js';
import type { NodeConfig } from '../config/schema.js';
import { registerMetaMetrics } from '../meta-metrics.js';
import type { NodeMetrics } from '../metrics.js';
import type { NodeStatus } from '../node-status.js';
import { metaNodes } from '../roles.js';
import { VERSION } from '../version.js';
import type { AdminApi } from './api.js';
import { bootstrapAdmin } from './bootstrap.js';
import { registerNode } from './nodes.js';

export interface MetaServices {
  users: UserStore;
  acls: AclStore;
  /** Stops the ACL watch and the meta metrics. */
  close(): void;
}

/**
 * What a node with a meta store offers on top of it: the user store, the ACL rules (cached and
 * watched), its entry in the node registry, the bootstrap admin on a first start, meta metrics,
 * and all of it attached to the admin API.
 */
export async function startMetaServices(options: {
  api: AdminApi;
  meta: MetaStore;
  config: NodeConfig;
  status: NodeStatus;
  metrics: NodeMetrics;
  logger: Logger;
}): Promise<MetaServices> {
  const { api, meta, config, status, metrics, logger } = options;
  const users = new UserStore(meta);
  const acls = await AclStore.open(meta, logger.child({ component: 'acl' }));
  const member =
    config.cluster === undefined ? undefined : metaNodes(config).find((n) => n.id === config.node_id);
  await registerNode(meta, {
    id: config.node_id,
    roles: [...config.roles],
    rpcAddress: member ? `${member.host}:${member.port}` : null,
    version: VERSION,
    startedAt: Date.now(),
  });
  await bootstrapAdmin(users, config.admin.password, logger.child({ component: 'admin-api' }));
  const stopMetrics = registerMetaMetrics(metrics, meta, status.metaGroup);
  api.attachMeta({ meta, users, acls });
  return {
    users,
    acls,
    close: () => {
      stopMetrics();
      acls.close();
    },
  };
}
