import type { DescribeClusterRequest } from '../../codec/messages/describe-cluster-request.js';
import type { DescribeClusterResponse } from '../../codec/messages/describe-cluster-response.js';
import { listedBrokers } from '../brokers.js';
import type { ApiHandler } from '../handler.js';

/** DescribeCluster: the live Kafka brokers; the lowest id stands as the controller. */
export const handleDescribeCluster: ApiHandler<DescribeClusterRequest, DescribeClusterResponse> = async (
  _request,
  context,
) => {
  const { broker } = context;
  return Promise.resolve({
    throttleTimeMs: 0,
    errorCode: 0,
    errorMessage: null,
    endpointType: 1,
    clusterId: broker.settings.clusterId,
    controllerId: broker.cluster.controllerId(),
    brokers: listedBrokers(broker, context.connection).map((b) => ({
      brokerId: b.nodeId,
      host: b.host,
      port: b.port,
      rack: null,
    })),
    clusterAuthorizedOperations: -2147483648,
  });
};
