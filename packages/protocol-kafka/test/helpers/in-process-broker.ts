import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, TopicCatalog, type MetaStore, type StorageEngine } from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { Broker } from '../../src/broker/broker.js';
import type { RequestContext } from '../../src/broker/handler.js';
import { parseSettings } from '../../src/config.js';
import { testBrokerContext } from './broker-context.js';

/** A Kafka broker in this process, on `storage` and a local meta store, for calling handlers directly. */
export interface InProcessBroker {
  broker: Broker;
  meta: MetaStore;
  /** The node's topic catalog, when the broker was started with one shared (as a server does). */
  topics: TopicCatalog | null;
  /** What a handler is given for a request of `apiKey` at `apiVersion` from an authenticated client. */
  context(apiKey: number, apiVersion: number): RequestContext;
  stop(): Promise<void>;
}

/**
 * `metaSeen` gives the broker another view of the meta store than the one returned as `meta` (a
 * store whose changes reach the broker late, as in a cluster).
 */
export async function startInProcessBroker(
  storage: StorageEngine,
  settings: Readonly<Record<string, unknown>> = {},
  options: { sharedTopics?: boolean; metaSeen?: (meta: MetaStore) => MetaStore } = {},
): Promise<InProcessBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'robustmq-kafka-in-process-'));
  const meta = await openLocalMetaStore({ dir, logger: silentLogger });
  const seen = options.metaSeen?.(meta) ?? meta;
  const topics = options.sharedTopics ? new TopicCatalog(seen, storage) : null;
  const broker = new Broker(
    testBrokerContext({ storage, meta: seen, ...(topics && { topics }) }),
    parseSettings(settings),
  );
  return {
    broker,
    meta,
    topics,
    context: (apiKey, apiVersion) => ({
      apiKey,
      apiVersion,
      correlationId: 1,
      clientId: 'test',
      connection: {
        id: 1,
        listener: 'tcp',
        remoteAddress: '127.0.0.1',
        remotePort: 1,
        clientId: 'test',
        principal: { username: null, superuser: false },
        authenticated: true,
        sasl: null,
        rawSasl: null,
      },
      broker,
      logger: silentLogger,
    }),
    stop: async () => {
      await broker.stop();
      await meta.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
