import { TopicCatalog, type MetaEvent, type MetaStore, type NewTopic } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handleProduce } from '../src/broker/handlers/produce.js';
import { encodeRecordBatch, KafkaErrorCode } from '../src/codec/index.js';
import { startInProcessBroker, type InProcessBroker } from './helpers/in-process-broker.js';

// A Produce names a partition the topic lacks before it looks at the records, as Kafka does, from
// the broker's cached view of the topic; a partition another broker added a moment ago, which
// that view has not heard of yet, is looked up before it is refused.

let storage: MemoryStorageEngine;
let node: InProcessBroker;
/** Another broker of the cluster, on the same meta store and storage. */
let other: TopicCatalog;
/** Catalog changes held back from the broker, as from another broker before its watch reports them. */
const heldBack: Array<() => void> = [];

const lateWatch = (meta: MetaStore): MetaStore => {
  const seen = Object.create(meta) as MetaStore;
  seen.watch = (prefix, listener, options) =>
    meta.watch(prefix, (event: MetaEvent) => heldBack.push(() => listener(event)), options);
  return seen;
};

beforeEach(async () => {
  storage = new MemoryStorageEngine();
  node = await startInProcessBroker(storage, {}, { metaSeen: lateWatch });
  other = new TopicCatalog(node.meta, storage);
});

afterEach(async () => {
  heldBack.length = 0;
  await node.stop();
  await storage.close();
});

const topic = (name: string): NewTopic => ({
  name,
  partitions: 1,
  storageClass: 'memory',
  retentionMs: null,
  retentionBytes: null,
  configs: {},
});

async function produce(name: string, partition: number, records: Buffer): Promise<number> {
  const response = await handleProduce(
    { acks: -1, timeoutMs: 1000, topicData: [{ name, partitionData: [{ index: partition, records }] }] },
    node.context(0, 9),
  );
  return response.responses[0]!.partitionResponses[0]!.errorCode;
}

const good = () => encodeRecordBatch({ records: [{ value: 'v' }] });

describe('a Produce to a partition', () => {
  it('the topic lacks: UNKNOWN_TOPIC_OR_PARTITION, whatever the records are', async () => {
    await other.create(topic('t'));
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
    await other.create(topic('grown'));
    heldBack.length = 0;
    // The broker's view now holds one partition.
    expect(await produce('grown', 0, await good())).toBe(KafkaErrorCode.none);
    await other.alter('grown', { partitions: 3 });
    expect(heldBack.length).toBeGreaterThan(0);
    expect(await produce('grown', 2, await good())).toBe(KafkaErrorCode.none);
    expect((await storage.shardInfo('grown/2')).nextOffset).toBe(1);
  });
});
