import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { SyncGroupRequest } from '../../codec/messages/sync-group-request.js';
import type { SyncGroupResponse } from '../../codec/messages/sync-group-response.js';
import { groupService, syncError } from '../../groups/index.js';
import type { ApiHandler } from '../handler.js';

/** SyncGroup: followers wait for the leader's assignment; everyone gets their own part. */
export const handleSyncGroup: ApiHandler<SyncGroupRequest, SyncGroupResponse> = async (request, context) => {
  const groups = groupService(context.broker);
  const refused = await groups.claim(request.groupId);
  const outcome =
    refused !== E.none
      ? syncError(refused)
      : await groups.coordinator.syncGroup({
          groupId: request.groupId,
          memberId: request.memberId,
          groupInstanceId: request.groupInstanceId ?? null,
          generationId: request.generationId,
          protocolType: request.protocolType ?? null,
          protocolName: request.protocolName ?? null,
          assignments: request.assignments,
        });
  const { assignment } = outcome;
  return {
    throttleTimeMs: 0,
    errorCode: outcome.errorCode,
    protocolType: outcome.protocolType,
    protocolName: outcome.protocolName,
    assignment: Buffer.from(assignment.buffer, assignment.byteOffset, assignment.byteLength),
  };
};
