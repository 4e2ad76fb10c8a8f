import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { HeartbeatRequest } from '../../codec/messages/heartbeat-request.js';
import type { HeartbeatResponse } from '../../codec/messages/heartbeat-response.js';
import { groupService } from '../../groups/index.js';
import type { ApiHandler } from '../handler.js';

/** Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin. */
export const handleHeartbeat: ApiHandler<HeartbeatRequest, HeartbeatResponse> = async (request, context) => {
  const groups = groupService(context.broker);
  const refused = await groups.claim(request.groupId);
  if (refused !== E.none) return { throttleTimeMs: 0, errorCode: refused };
  const errorCode = groups.coordinator.heartbeat({
    groupId: request.groupId,
    memberId: request.memberId,
    groupInstanceId: request.groupInstanceId ?? null,
    generationId: request.generationId,
  });
  return { throttleTimeMs: 0, errorCode };
};
