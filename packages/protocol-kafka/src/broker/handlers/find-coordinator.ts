import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { FindCoordinatorRequest } from '../../codec/messages/find-coordinator-request.js';
import type {
  FindCoordinatorResponse,
  FindCoordinatorResponseCoordinator,
} from '../../codec/messages/find-coordinator-response.js';
import type { ApiHandler } from '../handler.js';

/** Key types: 0 a consumer group, 1 a transactional id. */
const KNOWN_KEY_TYPES = new Set([0, 1]);

/**
 * FindCoordinator: the live broker that coordinates the key, the same one whichever broker is
 * asked (v4+ answers per key).
 */
export const handleFindCoordinator: ApiHandler<FindCoordinatorRequest, FindCoordinatorResponse> = (
  request,
  context,
) => {
  const { broker } = context;
  const keyType = request.keyType ?? 0;
  const failed = (
    key: string,
    errorCode: number,
    errorMessage: string,
  ): FindCoordinatorResponseCoordinator => ({
    key,
    nodeId: -1,
    host: '',
    port: -1,
    errorCode,
    errorMessage,
  });
  const answer = (key: string): FindCoordinatorResponseCoordinator => {
    if (!KNOWN_KEY_TYPES.has(keyType)) return failed(key, E.invalidRequest, `unknown key type ${keyType}`);
    const nodeId = broker.cluster.coordinatorOf(key, keyType);
    const endpoint = nodeId === null ? null : broker.endpointOf(nodeId, context.connection);
    if (nodeId === null || endpoint === null) {
      return failed(key, E.coordinatorNotAvailable, 'no live broker can coordinate it');
    }
    return { key, nodeId, host: endpoint.host, port: endpoint.port, errorCode: E.none, errorMessage: null };
  };
  if (context.apiVersion >= 4) {
    return Promise.resolve({ throttleTimeMs: 0, coordinators: (request.coordinatorKeys ?? []).map(answer) });
  }
  const one = answer(request.key ?? '');
  return Promise.resolve({
    throttleTimeMs: 0,
    errorCode: one.errorCode,
    errorMessage: one.errorMessage,
    nodeId: one.nodeId,
    host: one.host,
    port: one.port,
  });
};
