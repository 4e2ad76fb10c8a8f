import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { CreatePartitionsRequest } from '../../codec/messages/create-partitions-request.js';
import type { CreatePartitionsResponse } from '../../codec/messages/create-partitions-response.js';
import type { ApiHandler } from '../handler.js';
import { topicFailure } from '../errors.js';
import { authorized } from '../topics.js';

/** CreatePartitions: grows a topic to `count` partitions (never shrinks). */
export const handleCreatePartitions: ApiHandler<CreatePartitionsRequest, CreatePartitionsResponse> = async (
  request,
  context,
) => {
  const { catalog, logger } = context.broker;
  const results: CreatePartitionsResponse['results'] = [];
  for (const wanted of request.topics) {
    const answer = (errorCode: number, errorMessage: string | null) => ({
      name: wanted.name,
      errorCode,
      errorMessage,
    });
    try {
      if (!(await authorized(context, 'alter', wanted.name))) {
        results.push(answer(KafkaErrorCode.topicAuthorizationFailed, 'not allowed to alter this topic'));
        continue;
      }
      const topic = await catalog.get(wanted.name);
      if (!topic) {
        results.push(answer(KafkaErrorCode.unknownTopicOrPartition, `topic ${wanted.name} does not exist`));
        continue;
      }
      if (wanted.count <= topic.partitions) {
        results.push(
          answer(
            KafkaErrorCode.invalidPartitions,
            `topic ${wanted.name} has ${topic.partitions} partitions; the count can only grow`,
          ),
        );
        continue;
      }
      if (wanted.count > catalog.maxPartitions) {
        results.push(
          answer(
            KafkaErrorCode.invalidPartitions,
            `a topic has at most ${catalog.maxPartitions} partitions here`,
          ),
        );
        continue;
      }
      if (wanted.assignments !== null && wanted.assignments.length > 0) {
        results.push(
          answer(KafkaErrorCode.invalidReplicaAssignment, 'manual replica assignments are not supported'),
        );
        continue;
      }
      if (!request.validateOnly) {
        await catalog.alter(wanted.name, { partitions: wanted.count });
        logger.info({ topic: wanted.name, partitions: wanted.count }, 'partitions added');
      }
      results.push(answer(KafkaErrorCode.none, null));
    } catch (error) {
      results.push(answer(topicFailure(context, error, { topic: wanted.name }), (error as Error).message));
    }
  }
  return { throttleTimeMs: 0, results };
};
