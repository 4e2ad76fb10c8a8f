import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { OffsetDeleteRequest } from '../../codec/messages/offset-delete-request.js';
import type { OffsetDeleteResponse } from '../../codec/messages/offset-delete-response.js';
import { groupService } from '../../groups/index.js';
import type { ApiHandler } from '../handler.js';
import { authorized } from '../topics.js';

/**
 * OffsetDelete: forgets committed offsets of topics the group does not consume now. As in Kafka, a
 * partition the topic does not have (or a topic that does not exist) gets UNKNOWN_TOPIC_OR_PARTITION.
 */
export const handleOffsetDelete: ApiHandler<OffsetDeleteRequest, OffsetDeleteResponse> = async (
  request,
  context,
) => {
  const refused = await groupService(context.broker).claim(request.groupId);
  if (refused !== E.none) return { throttleTimeMs: 0, errorCode: refused, topics: [] };
  const topics = await Promise.all(
    request.topics.map(async (t) => {
      if (!(await authorized(context, 'subscribe', t.name)))
        return { name: t.name, error: E.topicAuthorizationFailed };
      const partitions = (await context.broker.catalog.get(t.name))?.partitions ?? 0;
      const known = t.partitions.filter((p) => p.partitionIndex >= 0 && p.partitionIndex < partitions);
      return { name: t.name, error: E.unknownTopicOrPartition, known: known.map((p) => p.partitionIndex) };
    }),
  );
  const result = await groupService(context.broker).deleteOffsets(
    request.groupId,
    topics.flatMap((t) =>
      t.known && t.known.length > 0 ? [{ name: t.name, partitionIndexes: t.known }] : [],
    ),
  );
  if (result.errorCode !== E.none) return { throttleTimeMs: 0, errorCode: result.errorCode, topics: [] };
  const deleted = new Map(
    result.topics.map((t) => [t.name, new Map(t.partitions.map((p) => [p.partitionIndex, p]))]),
  );
  return {
    throttleTimeMs: 0,
    errorCode: E.none,
    topics: request.topics.map((t, i) => ({
      name: t.name,
      partitions: t.partitions.map(
        (p) =>
          deleted.get(t.name)?.get(p.partitionIndex) ?? {
            partitionIndex: p.partitionIndex,
            errorCode: topics[i]!.error,
          },
      ),
    })),
  };
};
