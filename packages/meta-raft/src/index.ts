// The meta service: its replicated state machine and the durable standalone MetaStore built on it.
export type { MetaCommand, MetaDeleteOp, MetaOp, MetaPutOp } from './command.js';
export {
  decodeMetaCommand,
  decodeMetaEntry,
  encodeMetaCommand,
  encodeMetaCommandBatch,
  MAX_COMMAND_BYTES,
} from './command.js';
export type { MetaApplyResult, MetaOpResult, MetaStateMachineOptions } from './state-machine.js';
export { DEFAULT_HISTORY_LIMIT, MetaStateMachine } from './state-machine.js';
export type { LocalMetaStoreOptions } from './local-meta-store.js';
export { LocalMetaStore, openLocalMetaStore } from './local-meta-store.js';
export type { DiskRaftStorageOptions } from './disk-raft-storage.js';
export { DiskRaftStorage } from './disk-raft-storage.js';
export * from './raft/index.js';
export type { RaftMetaPeer, RaftMetaStatus, RaftMetaStoreOptions } from './raft-meta-store.js';
export { openRaftMetaStore, RaftMetaStore } from './raft-meta-store.js';
export type { ServedMetaStore, ServedNodeView } from './remote/service.js';
export { serveMetaClients } from './remote/service.js';
