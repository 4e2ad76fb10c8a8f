import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { DeleteTopicsRequest } from '../../codec/messages/delete-topics-request.js';
import type {
  DeleteTopicsResponse,
  DeleteTopicsResponseDeletableTopicResult,
} from '../../codec/messages/delete-topics-response.js';
import { ZERO_UUID } from '../../codec/protocol.js';
import type { ApiHandler } from '../handler.js';
import { authorized, kafkaErrorOf, topicIdOf } from '../topics.js';
import { partitionWriter } from './produce.js';

/** DeleteTopics by name (v0-5) or by name or topic id (v6). */
export const handleDeleteTopics: ApiHandler<DeleteTopicsRequest, DeleteTopicsResponse> = async (
  request,
  context,
) => {
  const { broker } = context;
  const wanted: Array<{ name: string | null; topicId: string }> =
    context.apiVersion >= 6
      ? (request.topics ?? [])
      : (request.topicNames ?? []).map((name) => ({ name, topicId: ZERO_UUID }));
  const responses: DeleteTopicsResponseDeletableTopicResult[] = [];
  for (const target of wanted) {
    let name = target.name;
    if (name === null) {
      const all = await broker.catalog.list();
      name = all.find((t) => topicIdOf(t) === target.topicId)?.name ?? null;
      if (name === null) {
        responses.push({
          name: null,
          topicId: target.topicId,
          errorCode: KafkaErrorCode.unknownTopicId,
          errorMessage: 'no topic with this id',
        });
        continue;
      }
    }
    const answer = (errorCode: number, errorMessage: string | null) => ({
      name,
      topicId: target.topicId,
      errorCode,
      errorMessage,
    });
    if (!(await authorized(context, 'delete', name))) {
      responses.push(answer(KafkaErrorCode.topicAuthorizationFailed, 'not allowed to delete this topic'));
      continue;
    }
    try {
      const deleted = await broker.catalog.delete(name);
      partitionWriter(context).forgetTopic(name);
      if (deleted) broker.logger.info({ topic: name }, 'topic deleted');
      responses.push(
        deleted
          ? answer(KafkaErrorCode.none, null)
          : answer(KafkaErrorCode.unknownTopicOrPartition, `topic ${name} does not exist`),
      );
    } catch (error) {
      responses.push(answer(kafkaErrorOf(error), (error as Error).message));
    }
  }
  return { throttleTimeMs: 0, responses };
};
