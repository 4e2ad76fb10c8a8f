import type { Topic } from '@robustmq/core';
import { KafkaErrorCode } from '../codec/error-codes.js';
import type { RequestContext } from './handler.js';
import { changeTo, checkTopicConfig, explicitConfigs, TopicConfigError } from './topic-configs.js';
import { topicFailure } from './errors.js';
import { authorized } from './topics.js';

/** Config resource types on the wire. */
export const ResourceType = { topic: 2, broker: 4 } as const;

export interface ResourceResult {
  errorCode: number;
  errorMessage: string | null;
  resourceType: number;
  resourceName: string;
}

/**
 * Alters one topic's configs: `edit` turns the current explicit configs into the wanted ones
 * (throwing a TopicConfigError for a bad one); the result is checked, then applied through the
 * catalog unless `validateOnly`.
 */
/** A request Kafka refuses as a whole for a resource (INVALID_REQUEST), not for a value in it. */
export class InvalidConfigRequest extends Error {}

/** As in Kafka, a config named twice for one resource makes the request invalid. */
export function refuseDuplicateKeys(configs: readonly { name: string }[]): void {
  const names = new Set<string>();
  for (const { name } of configs) {
    if (names.has(name)) throw new InvalidConfigRequest(`Error due to duplicate config keys: ${name}`);
    names.add(name);
  }
}

export async function alterTopicConfigs(
  context: RequestContext,
  resource: { resourceType: number; resourceName: string },
  validateOnly: boolean,
  edit: (current: Map<string, string>) => Map<string, string>,
): Promise<ResourceResult> {
  const answer = (errorCode: number, errorMessage: string | null): ResourceResult => ({
    errorCode,
    errorMessage,
    resourceType: resource.resourceType,
    resourceName: resource.resourceName,
  });
  if (resource.resourceType !== ResourceType.topic) {
    return answer(KafkaErrorCode.invalidRequest, 'only topic configs can be altered');
  }
  const name = resource.resourceName;
  try {
    if (!(await authorized(context, 'alter', name))) {
      return answer(KafkaErrorCode.topicAuthorizationFailed, 'not allowed to alter this topic');
    }
    const topic: Topic | null = await context.broker.catalog.get(name);
    if (!topic) return answer(KafkaErrorCode.unknownTopicOrPartition, `topic ${name} does not exist`);
    const wanted = edit(explicitConfigs(topic));
    for (const [key, value] of wanted) checkTopicConfig(key, value);
    if (!validateOnly) {
      await context.broker.catalog.alter(name, changeTo(topic, wanted));
      context.broker.logger.info(
        { topic: name, configs: Object.fromEntries(wanted) },
        'topic configs altered',
      );
    }
    return answer(KafkaErrorCode.none, null);
  } catch (error) {
    if (error instanceof TopicConfigError) return answer(KafkaErrorCode.invalidConfig, error.message);
    if (error instanceof InvalidConfigRequest) return answer(KafkaErrorCode.invalidRequest, error.message);
    return answer(topicFailure(context, error, { topic: name }), (error as Error).message);
  }
}
