export { loadConfig, type ConfigSources, type FlagSettings, type LoadedConfig } from './config/load.js';
export {
  DEFAULT_PROTOCOLS,
  DEFAULT_STORAGE_ENGINE,
  ROLES,
  type NodeConfig,
  type Role,
} from './config/schema.js';
export { startNode, type RunningNode, type StartOptions } from './node.js';
export type { StatusSnapshot, ListenerStatus } from './node-status.js';
export { StartupError } from './startup-error.js';
export { TopicTree } from './router/topic-tree.js';
export { UserStore } from './auth/users.js';
export { VERSION } from './version.js';
