import type { Topic } from '@robustmq/core';
import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { MetadataRequest } from '../../codec/messages/metadata-request.js';
import type { MetadataResponse, MetadataResponseTopic } from '../../codec/messages/metadata-response.js';
import { ZERO_UUID } from '../../codec/protocol.js';
import type { ApiHandler, RequestContext } from '../handler.js';
import { metadataErrorOf } from '../errors.js';
import { authorized, autoCreateTopic, topicIdOf, validTopicName } from '../topics.js';

const UNKNOWN_OPERATIONS = -2147483648;

function topicEntry(topic: Topic, nodeId: number): MetadataResponseTopic {
  return {
    errorCode: KafkaErrorCode.none,
    name: topic.name,
    topicId: topicIdOf(topic),
    isInternal: false,
    partitions: Array.from({ length: topic.partitions }, (_, partitionIndex) => ({
      errorCode: KafkaErrorCode.none,
      partitionIndex,
      leaderId: nodeId,
      leaderEpoch: 0,
      replicaNodes: [nodeId],
      isrNodes: [nodeId],
      offlineReplicas: [],
    })),
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
  return topicEntry(topic, broker.nodeId);
}

/** Metadata: this node is the only broker, the controller and every partition's leader. */
export const handleMetadata: ApiHandler<MetadataRequest, MetadataResponse> = async (request, context) => {
  const { broker } = context;
  const { host, port } = broker.advertised(context.connection.listener);
  // v0: an empty list means every topic; v1+: null means every topic, empty means none.
  const all = request.topics === null || (context.apiVersion === 0 && request.topics.length === 0);
  let topics: MetadataResponseTopic[];
  if (all) {
    const listed = await broker.catalog.list();
    const visible = await Promise.all(listed.map((t) => authorized(context, 'describe', t.name)));
    topics = listed.filter((_, i) => visible[i]).map((t) => topicEntry(t, broker.nodeId));
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
    brokers: [{ nodeId: broker.nodeId, host, port, rack: null }],
    clusterId: broker.settings.clusterId,
    controllerId: broker.nodeId,
    topics,
    clusterAuthorizedOperations: UNKNOWN_OPERATIONS,
  };
};
