import type { Topic } from '@robustmq/core';
import { KafkaErrorCode } from '../../codec/error-codes.js';
import type {
  CreateTopicsRequest,
  CreateTopicsRequestCreatableTopic,
} from '../../codec/messages/create-topics-request.js';
import type {
  CreateTopicsResponse,
  CreateTopicsResponseCreatableTopicResult,
} from '../../codec/messages/create-topics-response.js';
import { ZERO_UUID } from '../../codec/protocol.js';
import type { ApiHandler, RequestContext } from '../handler.js';
import {
  checkTopicConfig,
  configValue,
  newTopicWith,
  TOPIC_CONFIG_NAMES,
  TopicConfigError,
} from '../topic-configs.js';
import { topicFailure } from '../errors.js';
import { authorized, topicIdOf, validTopicName } from '../topics.js';

/** CreateTopics through the shared topic catalog; configs are checked before anything is made. */
export const handleCreateTopics: ApiHandler<CreateTopicsRequest, CreateTopicsResponse> = async (
  request,
  context,
) => {
  const topics: CreateTopicsResponseCreatableTopicResult[] = [];
  // As Kafka does, a name given twice creates neither: which of the two was meant is unknown.
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const { name } of request.topics) (seen.has(name) ? twice : seen).add(name);
  for (const wanted of request.topics) {
    const fail = (errorCode: number, errorMessage: string): CreateTopicsResponseCreatableTopicResult => ({
      name: wanted.name,
      topicId: ZERO_UUID,
      errorCode,
      errorMessage,
      topicConfigErrorCode: 0,
      numPartitions: -1,
      replicationFactor: -1,
      configs: null,
    });
    if (twice.has(wanted.name)) {
      topics.push(fail(KafkaErrorCode.invalidRequest, `topic ${wanted.name} is named more than once`));
      continue;
    }
    try {
      topics.push(await createTopic(context, wanted, request.validateOnly ?? false, fail));
    } catch (error) {
      topics.push(fail(topicFailure(context, error, { topic: wanted.name }), (error as Error).message));
    }
  }
  return { throttleTimeMs: 0, topics };
};

/** One topic of a CreateTopics request; throws what storage or the catalog threw. */
async function createTopic(
  context: RequestContext,
  wanted: CreateTopicsRequestCreatableTopic,
  validateOnly: boolean,
  fail: (errorCode: number, errorMessage: string) => CreateTopicsResponseCreatableTopicResult,
): Promise<CreateTopicsResponseCreatableTopicResult> {
  const { broker } = context;
  if (!validTopicName(wanted.name)) {
    return fail(KafkaErrorCode.invalidTopicException, `invalid topic name ${wanted.name}`);
  }
  if (!(await authorized(context, 'create', wanted.name))) {
    return fail(KafkaErrorCode.topicAuthorizationFailed, 'not allowed to create this topic');
  }
  let preferredLeaders: number[][] | undefined;
  if (wanted.assignments.length > 0) {
    const assigned = checkAssignment(wanted, new Set([...broker.cluster.brokers(), broker.nodeId]));
    if ('errorCode' in assigned) return fail(assigned.errorCode, assigned.message);
    preferredLeaders = assigned.brokers;
  }
  const partitions =
    preferredLeaders?.length ??
    (wanted.numPartitions === -1 ? broker.settings.defaultPartitions : wanted.numPartitions);
  if (!Number.isInteger(partitions) || partitions < 1) {
    return fail(KafkaErrorCode.invalidPartitions, 'the number of partitions must be at least 1');
  }
  if (partitions > broker.catalog.maxPartitions) {
    return fail(
      KafkaErrorCode.invalidPartitions,
      `a topic has at most ${broker.catalog.maxPartitions} partitions here`,
    );
  }
  if (preferredLeaders === undefined && wanted.replicationFactor !== -1 && wanted.replicationFactor !== 1) {
    return fail(KafkaErrorCode.invalidReplicationFactor, 'this cluster keeps one replica per partition');
  }
  const configs = new Map<string, string>();
  try {
    for (const config of wanted.configs) {
      if (config.value === null) continue;
      checkTopicConfig(config.name, config.value);
      configs.set(config.name, config.value);
    }
  } catch (error) {
    if (!(error instanceof TopicConfigError)) throw error;
    return fail(KafkaErrorCode.invalidConfig, error.message);
  }
  const fresh = newTopicWith(wanted.name, partitions, configs);
  if (preferredLeaders !== undefined) fresh.preferredLeaders = preferredLeaders;
  let created: Topic;
  if (validateOnly) {
    if (await broker.catalog.get(wanted.name)) {
      return fail(KafkaErrorCode.topicAlreadyExists, `topic ${wanted.name} already exists`);
    }
    created = { ...fresh, createdAt: Date.now() };
  } else {
    created = await broker.catalog.create(fresh);
    broker.logger.info({ topic: created.name, partitions }, 'topic created');
  }
  return {
    name: wanted.name,
    topicId: validateOnly ? ZERO_UUID : topicIdOf(created),
    errorCode: KafkaErrorCode.none,
    errorMessage: null,
    topicConfigErrorCode: 0,
    numPartitions: partitions,
    replicationFactor: 1,
    configs: TOPIC_CONFIG_NAMES.map((name) => {
      const { value, isDefault } = configValue(created, name)!;
      return { name, value, readOnly: false, configSource: isDefault ? 5 : 1, isSensitive: false };
    }),
  };
}

/**
 * Kafka's checks of a manual replica assignment (its controller's `createTopic`): partition count
 * and replication factor left to it (-1, or INVALID_REQUEST), each partition once, each list
 * non-empty, of known brokers named once and as long as the others, partitions numbered from 0
 * without gaps (INVALID_REPLICA_ASSIGNMENT). The lists, by partition, are what it asks for.
 */
function checkAssignment(
  wanted: CreateTopicsRequestCreatableTopic,
  brokers: ReadonlySet<number>,
): { brokers: number[][] } | { errorCode: number; message: string } {
  const invalid = (message: string) => ({ errorCode: KafkaErrorCode.invalidReplicaAssignment, message });
  if (wanted.replicationFactor !== -1) {
    return {
      errorCode: KafkaErrorCode.invalidRequest,
      message: 'A manual partition assignment was specified, but replication factor was not set to -1.',
    };
  }
  if (wanted.numPartitions !== -1) {
    return {
      errorCode: KafkaErrorCode.invalidRequest,
      message: 'A manual partition assignment was specified, but numPartitions was not set to -1.',
    };
  }
  const byPartition = new Map<number, number[]>();
  let replicas: number | null = null;
  for (const { partitionIndex, brokerIds } of wanted.assignments) {
    if (byPartition.has(partitionIndex)) {
      return invalid(`Found multiple manual partition assignments for partition ${partitionIndex}`);
    }
    if (brokerIds.length === 0) {
      return invalid('The manual partition assignment includes an empty replica list.');
    }
    // In ascending order, as Kafka checks them, so the message names the same broker.
    const sorted = [...brokerIds].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; i++) {
      if (!brokers.has(sorted[i]!)) {
        return invalid(
          `The manual partition assignment includes broker ${sorted[i]}, but no such broker is registered.`,
        );
      }
      if (i > 0 && sorted[i] === sorted[i - 1]) {
        return invalid(`The manual partition assignment includes the broker ${sorted[i]} more than once.`);
      }
    }
    if (replicas !== null && brokerIds.length !== replicas) {
      return invalid(
        `The manual partition assignment includes a partition with ${brokerIds.length} replica(s), but this is not consistent with previous partitions, which have ${replicas} replica(s).`,
      );
    }
    replicas = brokerIds.length;
    byPartition.set(partitionIndex, brokerIds);
  }
  const lists: number[][] = [];
  for (let partition = 0; partition < byPartition.size; partition++) {
    const list = byPartition.get(partition);
    if (list === undefined) return invalid('partitions should be a consecutive 0-based integer sequence');
    lists.push(list);
  }
  return { brokers: lists };
}
