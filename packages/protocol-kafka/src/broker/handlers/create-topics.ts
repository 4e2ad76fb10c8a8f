import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { CreateTopicsRequest } from '../../codec/messages/create-topics-request.js';
import type {
  CreateTopicsResponse,
  CreateTopicsResponseCreatableTopicResult,
} from '../../codec/messages/create-topics-response.js';
import { ZERO_UUID } from '../../codec/protocol.js';
import type { ApiHandler } from '../handler.js';
import {
  checkTopicConfig,
  configValue,
  newTopicWith,
  TOPIC_CONFIG_NAMES,
  TopicConfigError,
} from '../topic-configs.js';
import { authorized, kafkaErrorOf, topicIdOf, validTopicName } from '../topics.js';

/** CreateTopics through the shared topic catalog; configs are checked before anything is made. */
export const handleCreateTopics: ApiHandler<CreateTopicsRequest, CreateTopicsResponse> = async (
  request,
  context,
) => {
  const { broker } = context;
  const topics: CreateTopicsResponseCreatableTopicResult[] = [];
  for (const wanted of request.topics) {
    const partitions = wanted.numPartitions === -1 ? broker.settings.defaultPartitions : wanted.numPartitions;
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
    if (!validTopicName(wanted.name)) {
      topics.push(fail(KafkaErrorCode.invalidTopicException, `invalid topic name ${wanted.name}`));
      continue;
    }
    if (!(await authorized(context, 'create', wanted.name))) {
      topics.push(fail(KafkaErrorCode.topicAuthorizationFailed, 'not allowed to create this topic'));
      continue;
    }
    if (wanted.assignments.length > 0) {
      topics.push(fail(KafkaErrorCode.invalidRequest, 'manual replica assignments are not supported'));
      continue;
    }
    if (!Number.isInteger(partitions) || partitions < 1) {
      topics.push(fail(KafkaErrorCode.invalidPartitions, 'the number of partitions must be at least 1'));
      continue;
    }
    if (wanted.replicationFactor !== -1 && wanted.replicationFactor !== 1) {
      topics.push(
        fail(KafkaErrorCode.invalidReplicationFactor, 'this cluster keeps one replica per partition'),
      );
      continue;
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
      topics.push(fail(KafkaErrorCode.invalidConfig, error.message));
      continue;
    }
    const fresh = newTopicWith(wanted.name, partitions, configs);
    try {
      if (request.validateOnly) {
        if (await broker.catalog.get(wanted.name)) {
          topics.push(fail(KafkaErrorCode.topicAlreadyExists, `topic ${wanted.name} already exists`));
          continue;
        }
      }
      const created = request.validateOnly
        ? { ...fresh, createdAt: Date.now() }
        : await broker.catalog.create(fresh);
      if (!request.validateOnly) broker.logger.info({ topic: created.name, partitions }, 'topic created');
      topics.push({
        name: wanted.name,
        topicId: request.validateOnly ? ZERO_UUID : topicIdOf(created),
        errorCode: KafkaErrorCode.none,
        errorMessage: null,
        topicConfigErrorCode: 0,
        numPartitions: partitions,
        replicationFactor: 1,
        configs: TOPIC_CONFIG_NAMES.map((name) => {
          const { value, isDefault } = configValue(created, name)!;
          return { name, value, readOnly: false, configSource: isDefault ? 5 : 1, isSensitive: false };
        }),
      });
    } catch (error) {
      topics.push(fail(kafkaErrorOf(error), (error as Error).message));
    }
  }
  return { throttleTimeMs: 0, topics };
};
