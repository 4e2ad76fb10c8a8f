import type { Topic } from '@robustmq/core';
import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { MetadataRequest } from '../../codec/messages/metadata-request.js';
import type { MetadataResponse, MetadataResponseTopic } from '../../codec/messages/metadata-response.js';
import { ZERO_UUID } from '../../codec/protocol.js';
import { listedBrokers } from '../brokers.js';
import type { ApiHandler, KafkaBroker, RequestContext } from '../handler.js';
import { metadataErrorOf } from '../errors.js';
import { authorized, autoCreateTopic, topicIdOf, validTopicName } from '../topics.js';

const UNKNOWN_OPERATIONS = -2147483648;

function topicEntry(topic: Topic, broker: KafkaBroker): MetadataResponseTopic {
  return {
    errorCode: KafkaErrorCode.none,
    name: topic.name,
    topicId: topicIdOf(topic),
    isInternal: false,
    partitions: Array.from({ length: topic.partitions }, (_, partitionIndex) => {
      // Storage is shared, so the leader is the only replica there is to name.
      const leader = broker.cluster.leaderOf(topic.name, partitionIndex);
      return leader === null
        ? {
            errorCode: KafkaErrorCode.leaderNotAvailable,
            partitionIndex,
            leaderId: -1,
            leaderEpoch: -1,
            replicaNodes: [],
            isrNodes: [],
            offlineReplicas: [],
          }
        : {
            errorCode: KafkaErrorCode.none,
            partitionIndex,
            leaderId: leader,
            leaderEpoch: 0,
            replicaNodes: [leader],
            isrNodes: [leader],
            offlineReplicas: [],
          };
    }),
    topicAuthorizedOperations: UNKNOWN_OPERATIONS,
  };
}

function missing(name: string | null, errorCode: number): MetadataResponseTopic {
  return { errorCode, name, topicId: ZERO_UUID, isInternal: false, partitions: [] };
}

async function requestedTopic(
  context: RequestContext,
  name: string,
  allowAutoCreate: boolean,
): Promise<MetadataResponseTopic> {
  const { broker } = context;
  if (!validTopicName(name)) return missing(name, KafkaErrorCode.invalidTopicException);
  if (!(await authorized(context, 'describe', name))) {
    return missing(name, KafkaErrorCode.topicAuthorizationFailed);
  }
  let topic = await broker.catalog.get(name);
  if (!topic && allowAutoCreate && broker.settings.autoCreateTopics) {
    if (!(await authorized(context, 'create', name))) {
      return missing(name, KafkaErrorCode.topicAuthorizationFailed);
    }
    topic = await autoCreateTopic(broker, name);
  }
  if (!topic) return missing(name, KafkaErrorCode.unknownTopicOrPartition);
  return topicEntry(topic, broker);
}

/** Metadata: the live Kafka brokers, and each partition's leader among them. */
export const handleMetadata: ApiHandler<MetadataRequest, MetadataResponse> = async (request, context) => {
  const { broker } = context;
  // v0: an empty list means every topic; v1+: null means every topic, empty means none.
  const all = request.topics === null || (context.apiVersion === 0 && request.topics.length === 0);
  let topics: MetadataResponseTopic[];
  if (all) {
    const listed = await broker.catalog.list();
    const visible = await Promise.all(listed.map((t) => authorized(context, 'describe', t.name)));
    topics = listed.filter((_, i) => visible[i]).map((t) => topicEntry(t, broker));
  } else if (context.apiVersion < 12 && (request.topics ?? []).some((t) => t.name === null)) {
    // Before v12 a topic is named: as Kafka, the whole request is refused, names null written as ''.
    topics = (request.topics ?? []).map((t) => missing(t.name ?? '', KafkaErrorCode.invalidRequest));
  } else {
    const allowAutoCreate = request.allowAutoTopicCreation ?? true;
    topics = [];
    for (const requested of request.topics ?? []) {
      if (requested.name === null) {
        topics.push(missing(null, KafkaErrorCode.unknownTopicId));
        continue;
      }
      try {
        topics.push(await requestedTopic(context, requested.name, allowAutoCreate));
      } catch (error) {
        // One topic that cannot be looked up or created now does not cost the client the others.
        context.logger.warn({ err: error, topic: requested.name }, 'metadata for a topic failed');
        topics.push(missing(requested.name, metadataErrorOf(error)));
      }
    }
  }
  return {
    throttleTimeMs: 0,
    brokers: listedBrokers(broker, context.connection).map((b) => ({ ...b, rack: null })),
    clusterId: broker.settings.clusterId,
    controllerId: broker.cluster.controllerId(),
    topics,
    clusterAuthorizedOperations: UNKNOWN_OPERATIONS,
  };
};
