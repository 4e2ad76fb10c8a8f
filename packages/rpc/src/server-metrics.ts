import type { Counter, Gauge, Metrics } from '@robustmq/core';

/** The metrics an RPC server keeps. */
export interface ServerMetrics {
  /** Calls answered, by method and outcome (`OK` or an error code). */
  calls: Counter;
  /** Connections closed because the peer broke the protocol. */
  protocolErrors: Counter;
  connections: Gauge;
}

const noop = { inc: () => {}, dec: () => {}, set: () => {} };

export function serverMetrics(metrics: Metrics | undefined): ServerMetrics {
  if (!metrics) return { calls: noop, protocolErrors: noop, connections: noop };
  return {
    calls: metrics.counter({
      name: 'robustmq_rpc_server_calls_total',
      help: 'RPC calls answered by this node, by method and outcome',
      labelNames: ['method', 'outcome'],
    }),
    protocolErrors: metrics.counter({
      name: 'robustmq_rpc_server_protocol_errors_total',
      help: 'RPC connections closed because the peer sent malformed or oversized frames',
    }),
    connections: metrics.gauge({
      name: 'robustmq_rpc_server_connections',
      help: 'Open RPC connections to this node',
    }),
  };
}
