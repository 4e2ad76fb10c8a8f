import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { DescribeConfigsRequest } from '../../codec/messages/describe-configs-request.js';
import type {
  DescribeConfigsResponse,
  DescribeConfigsResponseDescribeConfigsResourceResult,
} from '../../codec/messages/describe-configs-response.js';
import { ResourceType } from '../config-resources.js';
import type { ApiHandler, KafkaBroker } from '../handler.js';
import { brokerDefaultOf, configValue, explicitConfigs, TOPIC_CONFIG_NAMES } from '../topic-configs.js';
import { topicFailure } from '../errors.js';
import { authorized } from '../topics.js';

/** Where a config value comes from (DescribeConfigs v1+). */
const Source = { topic: 1, staticBroker: 4, default: 5 } as const;

type Synonym = { name: string; value: string; source: number };

function entry(
  name: string,
  value: string,
  source: number,
  readOnly: boolean,
  synonyms: Synonym[],
): DescribeConfigsResponseDescribeConfigsResourceResult {
  return {
    name,
    value,
    readOnly,
    isDefault: source === Source.default,
    configSource: source,
    isSensitive: false,
    synonyms,
    configType: 0,
    documentation: null,
  };
}

function brokerConfigs(broker: KafkaBroker): Array<[string, string]> {
  const { settings } = broker;
  return [
    ['broker.id', String(broker.nodeId)],
    ['auto.create.topics.enable', String(settings.autoCreateTopics)],
    ['num.partitions', String(settings.defaultPartitions)],
    ['socket.request.max.bytes', String(settings.maxFrameSize)],
    ['default.replication.factor', '1'],
    ['offsets.topic.replication.factor', '1'],
    ['group.min.session.timeout.ms', String(settings.groupMinSessionTimeoutMs)],
    ['group.max.session.timeout.ms', String(settings.groupMaxSessionTimeoutMs)],
    ['group.initial.rebalance.delay.ms', String(settings.groupInitialRebalanceDelayMs)],
  ];
}

/**
 * A topic config's synonyms, most specific first, as Kafka lists them: the topic's own value when
 * set, then the broker config it defaults to.
 */
function synonymsOf(name: string, value: string, source: number): Synonym[] {
  const inherited = brokerDefaultOf(name);
  const own = source === Source.topic ? [{ name, value, source }] : [];
  return inherited ? [...own, { ...inherited, source: Source.default }] : own;
}

/** DescribeConfigs for topics (every known config, with its source) and for this broker. */
export const handleDescribeConfigs: ApiHandler<DescribeConfigsRequest, DescribeConfigsResponse> = async (
  request,
  context,
) => {
  const { broker } = context;
  const results: DescribeConfigsResponse['results'] = [];
  const synonyms = request.includeSynonyms === true;
  for (const resource of request.resources) {
    const answer = (
      errorCode: number,
      errorMessage: string | null,
      configs: DescribeConfigsResponse['results'][number]['configs'],
    ) => ({
      errorCode,
      errorMessage,
      resourceType: resource.resourceType,
      resourceName: resource.resourceName,
      configs,
    });
    const keys = resource.configurationKeys;
    const wanted = (name: string) => keys === null || keys.length === 0 || keys.includes(name);
    if (resource.resourceType === ResourceType.broker) {
      // As Kafka: "" names the cluster-wide dynamic defaults (none are set here), any other name
      // must be this broker's id; the client sends each broker's resource to that broker.
      if (resource.resourceName === '') {
        results.push(answer(KafkaErrorCode.none, null, []));
        continue;
      }
      if (!/^-?\d+$/.test(resource.resourceName) || Number(resource.resourceName) !== broker.nodeId) {
        results.push(
          answer(
            KafkaErrorCode.invalidRequest,
            `Unexpected broker id, expected ${broker.nodeId} or empty string, but received ${resource.resourceName}`,
            [],
          ),
        );
        continue;
      }
      const configs = brokerConfigs(broker)
        .filter(([name]) => wanted(name))
        .map(([name, value]) =>
          entry(
            name,
            value,
            Source.staticBroker,
            true,
            synonyms ? [{ name, value, source: Source.staticBroker }] : [],
          ),
        );
      results.push(answer(KafkaErrorCode.none, null, configs));
      continue;
    }
    if (resource.resourceType !== ResourceType.topic) {
      results.push(
        answer(KafkaErrorCode.invalidRequest, `unsupported resource type ${resource.resourceType}`, []),
      );
      continue;
    }
    try {
      if (!(await authorized(context, 'describe', resource.resourceName))) {
        results.push(
          answer(KafkaErrorCode.topicAuthorizationFailed, 'not allowed to describe this topic', []),
        );
        continue;
      }
      const topic = await broker.catalog.get(resource.resourceName);
      if (!topic) {
        results.push(
          answer(KafkaErrorCode.unknownTopicOrPartition, `topic ${resource.resourceName} does not exist`, []),
        );
        continue;
      }
      const names = new Set([...TOPIC_CONFIG_NAMES, ...explicitConfigs(topic).keys()]);
      const configs = [...names]
        .filter(wanted)
        .sort()
        .map((name) => {
          const { value, isDefault } = configValue(topic, name)!;
          const source = isDefault ? Source.default : Source.topic;
          return entry(name, value, source, false, synonyms ? synonymsOf(name, value, source) : []);
        });
      results.push(answer(KafkaErrorCode.none, null, configs));
    } catch (error) {
      results.push(
        answer(topicFailure(context, error, { topic: resource.resourceName }), (error as Error).message, []),
      );
    }
  }
  return { throttleTimeMs: 0, results };
};
