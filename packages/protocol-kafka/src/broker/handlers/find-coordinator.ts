import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { FindCoordinatorRequest } from '../../codec/messages/find-coordinator-request.js';
import type {
  FindCoordinatorResponse,
  FindCoordinatorResponseCoordinator,
} from '../../codec/messages/find-coordinator-response.js';
import type { ApiHandler } from '../handler.js';

/** Key types: 0 a consumer group, 1 a transactional id. */
const KNOWN_KEY_TYPES = new Set([0, 1]);

/** FindCoordinator: this broker coordinates every group (v4+ answers per key). */
export const handleFindCoordinator: ApiHandler<FindCoordinatorRequest, FindCoordinatorResponse> = (
  request,
  context,
) => {
  const { host, port } = context.broker.advertised(context.connection.listener);
  const nodeId = context.broker.nodeId;
  const keyType = request.keyType ?? 0;
  const answer = (key: string): FindCoordinatorResponseCoordinator =>
    KNOWN_KEY_TYPES.has(keyType)
      ? { key, nodeId, host, port, errorCode: E.none, errorMessage: null }
      : {
          key,
          nodeId: -1,
          host: '',
          port: -1,
          errorCode: E.invalidRequest,
          errorMessage: `unknown key type ${keyType}`,
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
