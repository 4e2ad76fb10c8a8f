import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { ListGroupsRequest } from '../../codec/messages/list-groups-request.js';
import type { ListGroupsResponse } from '../../codec/messages/list-groups-response.js';
import { groupService } from '../../groups/index.js';
import type { ApiHandler } from '../handler.js';

/** ListGroups, filtered by state (v4+) and type (v5+; every group here is "classic"). */
export const handleListGroups: ApiHandler<ListGroupsRequest, ListGroupsResponse> = async (
  request,
  context,
) => {
  const types = (request.typesFilter ?? []).map((t) => t.toLowerCase());
  if (types.length > 0 && !types.includes('classic'))
    return { throttleTimeMs: 0, errorCode: E.none, groups: [] };
  const listed = await groupService(context.broker).listGroups(request.statesFilter ?? []);
  return {
    throttleTimeMs: 0,
    errorCode: E.none,
    groups: listed.map((g) => ({
      groupId: g.groupId,
      protocolType: g.protocolType,
      groupState: g.state,
      groupType: 'classic',
    })),
  };
};
