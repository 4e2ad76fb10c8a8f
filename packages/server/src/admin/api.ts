import type { AdminResource, Logger, MetaStore, StorageEngine, TopicCatalog } from '@robustmq/core';
import type { AclStore } from '../acl/acl-store.js';
import type { AuthSettings } from '../auth/settings.js';
import type { UserStore } from '../auth/users.js';
import type { NodeConfig } from '../config/schema.js';
import type { LogLevelControl } from '../log-level.js';
import type { NodeStatus } from '../node-status.js';
import { ApiError } from './errors.js';
import { TokenStore } from './tokens.js';

/** What the admin API reads and changes once the node has a meta store. */
export interface MetaParts {
  meta: MetaStore;
  users: UserStore;
  acls: AclStore;
}

/** Topics, on a node that also has storage. */
export interface TopicParts {
  catalog: TopicCatalog;
  storage: StorageEngine;
}

export interface AdminApiOptions {
  status: NodeStatus;
  config: NodeConfig;
  logLevel: LogLevelControl;
  authSettings: AuthSettings;
  logger: Logger;
}

/**
 * The admin API's view of the node. The HTTP server starts before the meta store, storage and
 * protocols exist (so health can answer 503); they are attached here as they come up, and routes
 * that need a part not attached yet answer UNAVAILABLE.
 */
export class AdminApi {
  readonly tokens: TokenStore;
  private metaParts: MetaParts | null = null;
  private topicParts: TopicParts | null = null;
  /** Each started protocol's admin resources, by plugin name. */
  readonly protocols = new Map<string, Readonly<Record<string, AdminResource>>>();

  constructor(readonly options: AdminApiOptions) {
    this.tokens = new TokenStore(options.config.admin.token_ttl_seconds * 1000);
  }

  attachMeta(parts: MetaParts): void {
    this.metaParts = parts;
  }

  attachTopics(parts: TopicParts): void {
    this.topicParts = parts;
  }

  attachProtocol(name: string, resources: Readonly<Record<string, AdminResource>>): void {
    this.protocols.set(name, resources);
  }

  /** The meta parts, or UNAVAILABLE while the node has none (starting, or a journal-only node). */
  meta(): MetaParts {
    if (this.metaParts === null) {
      throw new ApiError(
        'UNAVAILABLE',
        this.options.status.snapshot().status === 'starting'
          ? 'the node is starting'
          : 'this node has no meta store; use the admin API of a node with the meta or broker role',
      );
    }
    return this.metaParts;
  }

  /** The topic parts, or UNAVAILABLE on a node without storage. */
  topics(): TopicParts {
    if (this.topicParts === null) {
      throw new ApiError(
        'UNAVAILABLE',
        this.options.status.snapshot().status === 'starting'
          ? 'the node is starting'
          : 'this node serves no topics; use the admin API of a broker node',
      );
    }
    return this.topicParts;
  }
}
