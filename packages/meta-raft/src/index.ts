// The meta service: its replicated state machine and the durable standalone MetaStore built on it.
export type { MetaCommand, MetaDeleteOp, MetaOp, MetaPutOp } from './command.js';
export { decodeMetaCommand, encodeMetaCommand, MAX_COMMAND_BYTES } from './command.js';
export type { MetaApplyResult, MetaOpResult, MetaStateMachineOptions } from './state-machine.js';
export { DEFAULT_HISTORY_LIMIT, MetaStateMachine } from './state-machine.js';
export type { LocalMetaStoreOptions } from './local-meta-store.js';
export { LocalMetaStore, openLocalMetaStore } from './local-meta-store.js';
export * from './raft/index.js';
