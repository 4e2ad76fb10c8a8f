import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { CreatePartitionsRequest } from '../../codec/messages/create-partitions-request.js';
import type { CreatePartitionsResponse } from '../../codec/messages/create-partitions-response.js';
import type { ApiHandler } from '../handler.js';
import { topicFailure } from '../errors.js';
import { authorized } from '../topics.js';

/**
 * CreatePartitions: grows a topic to `count` partitions (never shrinks), each new one led by the
 * first live broker of its assignment when one is given.
 */
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
      // KafkaJS sends an empty list, not null, when it has no assignment.
      let preferredLeaders: number[][] | undefined;
      if (wanted.assignments !== null && wanted.assignments.length > 0) {
        const brokers = new Set([...context.broker.cluster.brokers(), context.broker.nodeId]);
        const lists = wanted.assignments.map((a) => a.brokerIds);
        const refused = assignmentRefusal(
          lists,
          wanted.count - topic.partitions,
          topic.preferredLeaders,
          brokers,
        );
        if (refused !== null) {
          results.push(answer(KafkaErrorCode.invalidReplicaAssignment, refused));
          continue;
        }
        // Partitions made without an assignment keep no preference.
        preferredLeaders = Array.from({ length: wanted.count }, (_, partition) =>
          partition < topic.partitions
            ? [...(topic.preferredLeaders?.[partition] ?? [])]
            : lists[partition - topic.partitions]!,
        );
      }
      if (!request.validateOnly) {
        await catalog.alter(wanted.name, { partitions: wanted.count, preferredLeaders });
        logger.info({ topic: wanted.name, partitions: wanted.count }, 'partitions added');
      }
      results.push(answer(KafkaErrorCode.none, null));
    } catch (error) {
      results.push(answer(topicFailure(context, error, { topic: wanted.name }), (error as Error).message));
    }
  }
  return { throttleTimeMs: 0, results };
};

/**
 * Kafka's checks of the assignment of the partitions added (its controller's `createPartitions`),
 * answered INVALID_REPLICA_ASSIGNMENT with its message: one list per partition added, each
 * non-empty, of registered brokers named once, as long as the others and as the topic's own lists.
 */
function assignmentRefusal(
  lists: readonly (readonly number[])[],
  added: number,
  current: readonly (readonly number[])[] | undefined,
  brokers: ReadonlySet<number>,
): string | null {
  if (lists.length !== added) {
    return `Attempted to add ${added} additional partition(s), but only ${lists.length} assignment(s) were specified.`;
  }
  let replicas = current?.find((list) => list.length > 0)?.length ?? null;
  for (const list of lists) {
    if (list.length === 0) return 'The manual partition assignment includes an empty replica list.';
    const sorted = [...list].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; i++) {
      if (!brokers.has(sorted[i]!)) {
        return `The manual partition assignment includes broker ${sorted[i]}, but no such broker is registered.`;
      }
      if (i > 0 && sorted[i] === sorted[i - 1]) {
        return `The manual partition assignment includes the broker ${sorted[i]} more than once.`;
      }
    }
    if (replicas !== null && list.length !== replicas) {
      return `The manual partition assignment includes a partition with ${list.length} replica(s), but this is not consistent with previous partitions, which have ${replicas} replica(s).`;
    }
    replicas = list.length;
  }
  return null;
}
