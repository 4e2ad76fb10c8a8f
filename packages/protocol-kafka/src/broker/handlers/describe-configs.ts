import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { DescribeConfigsRequest } from '../../codec/messages/describe-configs-request.js';
import type {
  DescribeConfigsResponse,
  DescribeConfigsResponseDescribeConfigsResourceResult,
} from '../../codec/messages/describe-configs-response.js';
import { ResourceType } from '../config-resources.js';
import type { ApiHandler, KafkaBroker } from '../handler.js';
import {
  brokerDefaultOf,
  brokerTopicDefaults,
  ConfigType,
  configValue,
  explicitConfigs,
  TOPIC_CONFIG_NAMES,
  topicConfigSpec,
} from '../topic-configs.js';
import { topicFailure } from '../errors.js';
import { authorized } from '../topics.js';

/** Where a config value comes from (DescribeConfigs v1+). */
const Source = { topic: 1, staticBroker: 4, default: 5 } as const;

type Synonym = { name: string; value: string; source: number };

/** A config's value as DescribeConfigs reports it; `about` is the type and documentation, if known. */
interface Described {
  name: string;
  value: string;
  source: number;
  readOnly: boolean;
  synonyms: Synonym[];
  about: { type: ConfigType; doc: string } | null;
}

function entry(
  config: Described,
  withDocumentation: boolean,
): DescribeConfigsResponseDescribeConfigsResourceResult {
  return {
    name: config.name,
    value: config.value,
    readOnly: config.readOnly,
    isDefault: config.source === Source.default,
    configSource: config.source,
    isSensitive: false,
    synonyms: config.synonyms,
    configType: config.about === null ? 0 : ConfigType[config.about.type],
    documentation: withDocumentation && config.about !== null ? config.about.doc : null,
  };
}

/** A broker config in Kafka's name: its value, type, what it is here, and where it comes from. */
interface BrokerConfig {
  name: string;
  value: string;
  type: ConfigType;
  doc: string;
  source: number;
}

/** This broker's configs in Kafka's names; those the server's config file sets are static, the rest defaults. */
function brokerConfigs(broker: KafkaBroker): BrokerConfig[] {
  const { settings } = broker;
  const fromFile = (name: string, key: string, value: unknown, type: ConfigType): BrokerConfig => ({
    name,
    value: String(value),
    type,
    doc: `Set by kafka.${key} in the server's config file.`,
    source: settings.named.has(key) ? Source.staticBroker : Source.default,
  });
  return [
    {
      name: 'broker.id',
      value: String(broker.nodeId),
      type: 'int',
      doc: "This node's id in the cluster.",
      source: Source.staticBroker,
    },
    fromFile('auto.create.topics.enable', 'auto_create_topics', settings.autoCreateTopics, 'boolean'),
    fromFile('num.partitions', 'default_partitions', settings.defaultPartitions, 'int'),
    fromFile('socket.request.max.bytes', 'max_frame_size', settings.maxFrameSize, 'int'),
    {
      name: 'default.replication.factor',
      value: '1',
      type: 'int',
      doc: 'Partitions have one replica, on shared storage.',
      source: Source.default,
    },
    {
      name: 'offsets.topic.replication.factor',
      value: '1',
      type: 'short',
      doc: 'Committed offsets are kept in the meta service, not in a topic.',
      source: Source.default,
    },
    fromFile(
      'group.min.session.timeout.ms',
      'group_min_session_timeout_ms',
      settings.groupMinSessionTimeoutMs,
      'int',
    ),
    fromFile(
      'group.max.session.timeout.ms',
      'group_max_session_timeout_ms',
      settings.groupMaxSessionTimeoutMs,
      'int',
    ),
    fromFile(
      'group.initial.rebalance.delay.ms',
      'group_initial_rebalance_delay_ms',
      settings.groupInitialRebalanceDelayMs,
      'int',
    ),
    ...brokerTopicDefaults().map((config) => ({ ...config, source: Source.default })),
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
  const documentation = request.includeDocumentation === true;
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
        .filter(({ name }) => wanted(name))
        .map(({ name, value, type, doc, source }) =>
          entry(
            {
              name,
              value,
              source,
              readOnly: true,
              synonyms: synonyms ? [{ name, value, source }] : [],
              about: { type, doc },
            },
            documentation,
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
          return entry(
            {
              name,
              value,
              source,
              readOnly: false,
              synonyms: synonyms ? synonymsOf(name, value, source) : [],
              about: topicConfigSpec(name),
            },
            documentation,
          );
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
