import type { DeleteGroupsRequest } from '../../codec/messages/delete-groups-request.js';
import type { DeleteGroupsResponse } from '../../codec/messages/delete-groups-response.js';
import { groupService } from '../../groups/index.js';
import type { ApiHandler } from '../handler.js';

/** DeleteGroups: each empty group goes with its offsets; others answer NON_EMPTY_GROUP or GROUP_ID_NOT_FOUND. */
export const handleDeleteGroups: ApiHandler<DeleteGroupsRequest, DeleteGroupsResponse> = async (
  request,
  context,
) => {
  const groups = groupService(context.broker);
  const results = [];
  for (const groupId of request.groupsNames)
    results.push({ groupId, errorCode: await groups.deleteGroup(groupId) });
  return { throttleTimeMs: 0, results };
};
