import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { LeaveGroupRequest } from '../../codec/messages/leave-group-request.js';
import type { LeaveGroupResponse } from '../../codec/messages/leave-group-response.js';
import { groupService } from '../../groups/index.js';
import type { ApiHandler } from '../handler.js';

/** LeaveGroup: one member (v0-2) or a batch of members by id or instance id (v3+). */
export const handleLeaveGroup: ApiHandler<LeaveGroupRequest, LeaveGroupResponse> = async (
  request,
  context,
) => {
  const groups = groupService(context.broker);
  const refused = await groups.claim(request.groupId);
  if (refused !== E.none) return { throttleTimeMs: 0, errorCode: refused, members: [] };
  if (context.apiVersion < 3) {
    const outcome = groups.coordinator.leaveGroup(request.groupId, [
      { memberId: request.memberId ?? '', groupInstanceId: null },
    ]);
    return { throttleTimeMs: 0, errorCode: outcome.errorCode };
  }
  const outcome = groups.coordinator.leaveGroup(
    request.groupId,
    (request.members ?? []).map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId })),
  );
  // v3+ reports members one by one; the top level fails only for the group as a whole.
  const groupError = outcome.errorCode === E.coordinatorNotAvailable ? outcome.errorCode : E.none;
  return { throttleTimeMs: 0, errorCode: groupError, members: outcome.members };
};
