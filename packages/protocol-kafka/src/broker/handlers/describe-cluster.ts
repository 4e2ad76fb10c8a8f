import type { DescribeClusterRequest } from '../../codec/messages/describe-cluster-request.js';
import type { DescribeClusterResponse } from '../../codec/messages/describe-cluster-response.js';
import type { ApiHandler } from '../handler.js';

/** DescribeCluster: this node alone, as broker and controller. */
export const handleDescribeCluster: ApiHandler<DescribeClusterRequest, DescribeClusterResponse> = async (
  _request,
  context,
) => {
  const { broker } = context;
  const { host, port } = broker.advertised(context.connection.listener);
  return Promise.resolve({
    throttleTimeMs: 0,
    errorCode: 0,
    errorMessage: null,
    endpointType: 1,
    clusterId: broker.settings.clusterId,
    controllerId: broker.nodeId,
    brokers: [{ brokerId: broker.nodeId, host, port, rack: null }],
    clusterAuthorizedOperations: -2147483648,
  });
};
