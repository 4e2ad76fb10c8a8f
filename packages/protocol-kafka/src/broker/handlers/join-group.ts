import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { JoinGroupRequest } from '../../codec/messages/join-group-request.js';
import type { JoinGroupResponse } from '../../codec/messages/join-group-response.js';
import { groupService, joinError } from '../../groups/index.js';
import type { ApiHandler } from '../handler.js';

/** JoinGroup: a long poll that answers once the group's join phase completes. */
export const handleJoinGroup: ApiHandler<JoinGroupRequest, JoinGroupResponse> = async (request, context) => {
  const groups = groupService(context.broker);
  const refused = await groups.claim(request.groupId);
  const outcome =
    refused !== E.none
      ? joinError(request.memberId, refused)
      : await groups.coordinator.joinGroup({
          groupId: request.groupId,
          memberId: request.memberId,
          groupInstanceId: request.groupInstanceId ?? null,
          clientId: context.clientId ?? '',
          clientHost: `/${context.connection.remoteAddress}`,
          sessionTimeoutMs: request.sessionTimeoutMs,
          // JoinGroup v0 has no rebalance timeout: Kafka uses the session timeout.
          rebalanceTimeoutMs:
            context.apiVersion >= 1
              ? (request.rebalanceTimeoutMs ?? request.sessionTimeoutMs)
              : request.sessionTimeoutMs,
          protocolType: request.protocolType,
          protocols: request.protocols,
          requireKnownMemberId: context.apiVersion >= 4,
        });
  return {
    throttleTimeMs: 0,
    errorCode: outcome.errorCode,
    generationId: outcome.generationId,
    protocolType: outcome.protocolType,
    // The protocol name becomes nullable only in v7.
    protocolName: context.apiVersion >= 7 ? outcome.protocolName : (outcome.protocolName ?? ''),
    leader: outcome.leader,
    skipAssignment: outcome.skipAssignment,
    memberId: outcome.memberId,
    members: outcome.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: Buffer.from(m.metadata.buffer, m.metadata.byteOffset, m.metadata.byteLength),
    })),
  };
};
