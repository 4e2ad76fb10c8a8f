import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { DeleteTopicsRequest } from '../../codec/messages/delete-topics-request.js';
import type {
  DeleteTopicsResponse,
  DeleteTopicsResponseDeletableTopicResult,
} from '../../codec/messages/delete-topics-response.js';
import { ZERO_UUID } from '../../codec/protocol.js';
import type { ApiHandler, RequestContext } from '../handler.js';
import { topicFailure } from '../errors.js';
import { authorized, topicIdOf } from '../topics.js';
import { partitionWriter } from './produce.js';

/** Deletes one topic named or identified; throws what the catalog or storage threw. */
async function deleteTopic(
  context: RequestContext,
  target: { name: string | null; topicId: string },
): Promise<DeleteTopicsResponseDeletableTopicResult> {
  const { broker } = context;
  let name = target.name;
  if (name === null) {
    const all = await broker.catalog.list();
    name = all.find((t) => topicIdOf(t) === target.topicId)?.name ?? null;
    if (name === null) {
      return {
        name: null,
        topicId: target.topicId,
        errorCode: KafkaErrorCode.unknownTopicId,
        errorMessage: 'no topic with this id',
      };
    }
  }
  const answer = (errorCode: number, errorMessage: string | null) => ({
    name,
    topicId: target.topicId,
    errorCode,
    errorMessage,
  });
  if (!(await authorized(context, 'delete', name))) {
    return answer(KafkaErrorCode.topicAuthorizationFailed, 'not allowed to delete this topic');
  }
  const deleted = await broker.catalog.delete(name);
  partitionWriter(context).forgetTopic(name);
  if (!deleted) return answer(KafkaErrorCode.unknownTopicOrPartition, `topic ${name} does not exist`);
  broker.logger.info({ topic: name }, 'topic deleted');
  return answer(KafkaErrorCode.none, null);
}

/** DeleteTopics by name (v0-5) or by name or topic id (v6). */
export const handleDeleteTopics: ApiHandler<DeleteTopicsRequest, DeleteTopicsResponse> = async (
  request,
  context,
) => {
  const wanted: Array<{ name: string | null; topicId: string }> =
    context.apiVersion >= 6
      ? (request.topics ?? [])
      : (request.topicNames ?? []).map((name) => ({ name, topicId: ZERO_UUID }));
  const responses: DeleteTopicsResponseDeletableTopicResult[] = [];
  for (const target of wanted) {
    try {
      responses.push(await deleteTopic(context, target));
    } catch (error) {
      responses.push({
        name: target.name,
        topicId: target.topicId,
        errorCode: topicFailure(context, error, { topic: target.name }),
        errorMessage: (error as Error).message,
      });
    }
  }
  return { throttleTimeMs: 0, responses };
};
