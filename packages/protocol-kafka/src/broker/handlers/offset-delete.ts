import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { OffsetDeleteRequest } from '../../codec/messages/offset-delete-request.js';
import type { OffsetDeleteResponse } from '../../codec/messages/offset-delete-response.js';
import { groupService } from '../../groups/index.js';
import type { ApiHandler } from '../handler.js';
import { authorized } from '../topics.js';

/** OffsetDelete: forgets committed offsets of topics the group does not consume now. */
export const handleOffsetDelete: ApiHandler<OffsetDeleteRequest, OffsetDeleteResponse> = async (
  request,
  context,
) => {
  const allowed = await Promise.all(request.topics.map((t) => authorized(context, 'subscribe', t.name)));
  const result = await groupService(context.broker).deleteOffsets(
    request.groupId,
    request.topics
      .filter((_, i) => allowed[i])
      .map((t) => ({ name: t.name, partitionIndexes: t.partitions.map((p) => p.partitionIndex) })),
  );
  if (result.errorCode !== E.none) return { throttleTimeMs: 0, errorCode: result.errorCode, topics: [] };
  let next = 0;
  const topics = request.topics.map((t, i) =>
    allowed[i]
      ? result.topics[next++]!
      : {
          name: t.name,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partitionIndex,
            errorCode: E.topicAuthorizationFailed,
          })),
        },
  );
  return { throttleTimeMs: 0, errorCode: E.none, topics };
};
