import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, TopicCatalog, type MetaEvent, type MetaStore } from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../src/broker/broker.js';
import type { RequestContext } from '../src/broker/handler.js';
import { handleProduce } from '../src/broker/handlers/produce.js';
import { encodeRecordBatch, KafkaErrorCode } from '../src/codec/index.js';
import { parseSettings } from '../src/config.js';
import { testBrokerContext } from './helpers/broker-context.js';

// A Produce names a partition the topic lacks before it looks at the records, as Kafka does, from
// the broker's cached view of the topic; a partition another broker added a moment ago, which
// that view has not heard of yet, is looked up before it is refused.

let dir: string;
let meta: MetaStore;
let storage: MemoryStorageEngine;
let broker: Broker;
/** Catalog changes held back from the broker, as from another broker before its watch reports them. */
const heldBack: Array<() => void> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'robustmq-kafka-produce-partitions-'));
  meta = await openLocalMetaStore({ dir, logger: silentLogger });
  storage = new MemoryStorageEngine();
  const lateWatch: MetaStore = Object.create(meta) as MetaStore;
  lateWatch.watch = (prefix, listener, options) =>
    meta.watch(prefix, (event: MetaEvent) => heldBack.push(() => listener(event)), options);
  broker = new Broker(testBrokerContext({ storage, meta: lateWatch }), parseSettings({}));
});

afterEach(async () => {
  heldBack.length = 0;
  await broker.stop();
  await meta.close();
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});

const context: RequestContext = {
  apiKey: 0,
  apiVersion: 9,
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
  get broker() {
    return broker;
  },
  logger: silentLogger,
};

async function produce(topic: string, partition: number, records: Buffer): Promise<number> {
  const response = await handleProduce(
    {
      acks: -1,
      timeoutMs: 1000,
      topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
    },
    context,
  );
  return response.responses[0]!.partitionResponses[0]!.errorCode;
}

const good = () => encodeRecordBatch({ records: [{ value: 'v' }] });

describe('a Produce to a partition', () => {
  it('the topic lacks: UNKNOWN_TOPIC_OR_PARTITION, whatever the records are', async () => {
    const other = new TopicCatalog(meta, storage);
    await other.create({
      name: 't',
      partitions: 1,
      storageClass: 'memory',
      retentionMs: null,
      retentionBytes: null,
      configs: {},
    });
    const corrupt = await good();
    corrupt[corrupt.length - 1]! ^= 1;
    for (const records of [await good(), corrupt, Buffer.from('garbage')]) {
      expect(await produce('t', 1, records)).toBe(KafkaErrorCode.unknownTopicOrPartition);
      expect(await produce('t', -1, records)).toBe(KafkaErrorCode.unknownTopicOrPartition);
      expect(await produce('absent', 0, records)).toBe(KafkaErrorCode.unknownTopicOrPartition);
    }
    expect(await produce('t', 0, corrupt)).toBe(KafkaErrorCode.corruptMessage);
    expect(await produce('t', 0, await good())).toBe(KafkaErrorCode.none);
  });

  it('added by another broker a moment ago, before its change reaches this one: stored', async () => {
    const other = new TopicCatalog(meta, storage);
    await other.create({
      name: 'grown',
      partitions: 1,
      storageClass: 'memory',
      retentionMs: null,
      retentionBytes: null,
      configs: {},
    });
    heldBack.length = 0;
    // The broker's view now holds one partition.
    expect(await produce('grown', 0, await good())).toBe(KafkaErrorCode.none);
    await other.alter('grown', { partitions: 3 });
    expect(heldBack.length).toBeGreaterThan(0);
    expect(await produce('grown', 2, await good())).toBe(KafkaErrorCode.none);
    expect((await storage.shardInfo('grown/2')).nextOffset).toBe(1);
  });
});
