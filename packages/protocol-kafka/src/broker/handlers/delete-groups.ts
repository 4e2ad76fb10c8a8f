import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { DeleteGroupsRequest } from '../../codec/messages/delete-groups-request.js';
import type { DeleteGroupsResponse } from '../../codec/messages/delete-groups-response.js';
import { groupService } from '../../groups/index.js';
import { coordinatorErrorOf } from '../errors.js';
import type { ApiHandler } from '../handler.js';

/** DeleteGroups: each empty group goes with its offsets; others answer NON_EMPTY_GROUP or GROUP_ID_NOT_FOUND. */
export const handleDeleteGroups: ApiHandler<DeleteGroupsRequest, DeleteGroupsResponse> = async (
  request,
  context,
) => {
  const groups = groupService(context.broker);
  const results = [];
  for (const groupId of request.groupsNames) {
    try {
      const refused = await groups.claim(groupId);
      results.push({ groupId, errorCode: refused !== E.none ? refused : await groups.deleteGroup(groupId) });
    } catch (error) {
      context.logger.error({ err: error, group: groupId }, 'deleting a group failed');
      results.push({ groupId, errorCode: coordinatorErrorOf(error) });
    }
  }
  return { throttleTimeMs: 0, results };
};
