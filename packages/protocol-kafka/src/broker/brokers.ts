import type { ConnectionAddress, KafkaBroker } from './handler.js';

export interface ListedBroker {
  nodeId: number;
  host: string;
  port: number;
}

/**
 * The brokers a client of `connection` is told about: the live ones that have its listener,
 * ascending by id. This broker is listed even while it is cut off, so that its own clients can
 * still find it.
 */
export function listedBrokers(broker: KafkaBroker, connection: ConnectionAddress): ListedBroker[] {
  const ids = new Set(broker.cluster.brokers());
  ids.add(broker.nodeId);
  const listed: ListedBroker[] = [];
  for (const nodeId of [...ids].sort((a, b) => a - b)) {
    const endpoint = broker.endpointOf(nodeId, connection);
    if (endpoint) listed.push({ nodeId, host: endpoint.host, port: endpoint.port });
  }
  return listed;
}
