import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { OffsetCommitRequest } from '../../codec/messages/offset-commit-request.js';
import type { OffsetCommitResponse } from '../../codec/messages/offset-commit-response.js';
import { groupService } from '../../groups/index.js';
import { coordinatorErrorOf } from '../errors.js';
import type { ApiHandler, RequestContext } from '../handler.js';
import { authorized } from '../topics.js';

/** OffsetCommit: a member's commits in its generation, or simple commits (generation -1) outside any group. */
export const handleOffsetCommit: ApiHandler<OffsetCommitRequest, OffsetCommitResponse> = async (
  request,
  context,
) => {
  try {
    return await commit(request, context);
  } catch (error) {
    // Every partition gets the failure's code (the meta store down: COORDINATOR_NOT_AVAILABLE).
    context.logger.error({ err: error, group: request.groupId }, 'offset commit failed');
    const errorCode = coordinatorErrorOf(error);
    return {
      throttleTimeMs: 0,
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
      })),
    };
  }
};

async function commit(request: OffsetCommitRequest, context: RequestContext): Promise<OffsetCommitResponse> {
  const refused = await groupService(context.broker).claim(request.groupId);
  if (refused !== E.none) {
    return {
      throttleTimeMs: 0,
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: refused })),
      })),
    };
  }
  // Committing a position in a topic needs the right to consume it.
  const allowed = await Promise.all(request.topics.map((t) => authorized(context, 'subscribe', t.name)));
  const committed = await groupService(context.broker).commitOffsets({
    groupId: request.groupId,
    memberId: request.memberId ?? '',
    groupInstanceId: request.groupInstanceId ?? null,
    generationId: request.generationIdOrMemberEpoch ?? -1,
    topics: request.topics
      .filter((_, i) => allowed[i])
      .map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          committedOffset: Number(p.committedOffset),
          committedLeaderEpoch: p.committedLeaderEpoch ?? -1,
          committedMetadata: p.committedMetadata,
        })),
      })),
  });
  let next = 0;
  const topics = request.topics.map((t, i) =>
    allowed[i]
      ? committed[next++]!
      : {
          name: t.name,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partitionIndex,
            errorCode: E.topicAuthorizationFailed,
          })),
        },
  );
  return { throttleTimeMs: 0, topics };
}
