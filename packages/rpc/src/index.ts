// @robustmq/rpc: the internal RPC between RobustMQ nodes. Framed messages over TCP or TLS,
// pipelined request/response calls and server-to-client streams, deadlines, backpressure.
export { createRpcServer, type RpcServer, type RpcServerOptions } from './server.js';
export {
  connectRpc,
  type CallOptions,
  type RpcClient,
  type RpcClientOptions,
  type StreamOptions,
} from './client.js';
export type { RpcStream } from './client-stream.js';
export type { CallContext, StreamHandler, UnaryHandler } from './handlers.js';
export { DEFAULT_MAX_FRAME_BYTES, DEFAULT_PORT } from './limits.js';
export { mutualTls, type MutualTls, type NodeCertificate } from './mutual-tls.js';
