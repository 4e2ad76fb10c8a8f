// @robustmq/meta-raft/remote: the MetaStore for nodes without the meta role, over @robustmq/rpc.
export type { RemoteMetaNode, RemoteMetaStoreOptions } from './client.js';
export { connectRemoteMetaStore, RemoteMetaStore } from './client.js';
