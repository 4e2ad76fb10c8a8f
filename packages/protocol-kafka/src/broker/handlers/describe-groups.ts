import type { DescribeGroupsRequest } from '../../codec/messages/describe-groups-request.js';
import type { DescribeGroupsResponse } from '../../codec/messages/describe-groups-response.js';
import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import { groupService } from '../../groups/index.js';
import { coordinatorErrorOf } from '../errors.js';
import type { ApiHandler } from '../handler.js';

/** Kafka's value for "authorized operations were not asked for". */
const OPERATIONS_OMITTED = -2147483648;

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** DescribeGroups: state, protocol and members of each group; unknown groups are Dead. */
export const handleDescribeGroups: ApiHandler<DescribeGroupsRequest, DescribeGroupsResponse> = async (
  request,
  context,
) => {
  const groups = groupService(context.broker);
  const described = await Promise.all(
    request.groups.map(async (groupId) => {
      const failed = (errorCode: number) => ({
        errorCode,
        groupId,
        groupState: '',
        protocolType: '',
        protocolData: '',
        members: [],
        authorizedOperations: OPERATIONS_OMITTED,
      });
      let summary: Awaited<ReturnType<typeof groups.describeGroup>>;
      try {
        const refused = await groups.claim(groupId);
        if (refused !== E.none) return failed(refused);
        summary = await groups.describeGroup(groupId);
      } catch (error) {
        context.logger.error({ err: error, group: groupId }, 'describing a group failed');
        return failed(coordinatorErrorOf(error));
      }
      return {
        errorCode: E.none,
        groupId,
        groupState: summary.state,
        protocolType: summary.protocolType,
        protocolData: summary.protocolName,
        members: summary.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: asBuffer(m.metadata),
          memberAssignment: asBuffer(m.assignment),
        })),
        authorizedOperations: OPERATIONS_OMITTED,
      };
    }),
  );
  return { throttleTimeMs: 0, groups: described };
};
