import {
  silentLogger,
  type Authorizer,
  type BrokerContext,
  type Logger,
  type MetaStore,
  type Metrics,
  type StorageEngine,
  type TopicCatalog,
} from '@robustmq/core';

const noMetrics: Metrics = {
  counter: () => ({ inc: () => {} }),
  gauge: () => ({ set: () => {}, inc: () => {}, dec: () => {} }),
  histogram: () => ({ observe: () => {} }),
};

/** Lets everyone in anonymously and do anything. */
const openAuth: Authorizer = {
  authenticate: () => Promise.resolve(null),
  authorize: () => Promise.resolve(true),
  scramCredential: () => Promise.resolve(null),
};

/**
 * What the Kafka plugin is given by a node, for tests that run it on their own storage and meta:
 * no router subscribers, no metrics, and a record codec it must not need (Kafka stores batches as
 * produced).
 */
export function testBrokerContext(parts: {
  storage: StorageEngine;
  meta: MetaStore;
  nodeId?: number;
  auth?: Authorizer;
  logger?: Logger;
  /** The node's topic catalog, shared with its other protocols. */
  topics?: TopicCatalog;
}): BrokerContext {
  return {
    nodeId: parts.nodeId ?? 1,
    version: 'test',
    router: { publish: () => 0, subscribe: () => ({ filter: '', unsubscribe: () => {} }) },
    storage: parts.storage,
    meta: parts.meta,
    auth: parts.auth ?? openAuth,
    metrics: noMetrics,
    logger: parts.logger ?? silentLogger,
    records: {
      encode: () => Promise.reject(new Error('not used')),
      decode: () => Promise.reject(new Error('not used')),
    },
    ...(parts.topics && { topics: parts.topics }),
  };
}
