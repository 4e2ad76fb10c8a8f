import type { ShardInfo } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handleCreateTopics } from '../src/broker/handlers/create-topics.js';
import { handleInitProducerId } from '../src/broker/handlers/init-producer-id.js';
import { handleProduce } from '../src/broker/handlers/produce.js';
import { encodeRecordBatch, KafkaErrorCode } from '../src/codec/index.js';
import { startInProcessBroker, type InProcessBroker } from './helpers/in-process-broker.js';

// With a remote journal node every storage call on the produce path is a round trip: a Produce
// pass makes its appends and nothing else once the partition's next offset is known, as the
// append's result carries the log start offset Produce v5+ answers with.

/** A memory engine that records the shards it is asked the info of. */
class CountingStorage extends MemoryStorageEngine {
  readonly infoCalls: string[] = [];

  override shardInfo(shard: string): Promise<ShardInfo> {
    this.infoCalls.push(shard);
    return super.shardInfo(shard);
  }
}

let storage: CountingStorage;
let node: InProcessBroker;
const context = (apiKey: number, apiVersion: number) => node.context(apiKey, apiVersion);

beforeEach(async () => {
  storage = new CountingStorage();
  node = await startInProcessBroker(storage);
  const created = await handleCreateTopics(
    {
      topics: [{ name: 't', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 1000,
    },
    context(19, 7),
  );
  expect(created.topics[0]!.errorCode).toBe(0);
});

afterEach(async () => {
  await node.stop();
  await storage.close();
});

/** Produces one batch to each of partitions 0 and 1; answers [errorCode, baseOffset, logStartOffset] each. */
async function produceBoth(
  records: () => Promise<Buffer>,
): Promise<Array<[number, bigint, bigint | undefined]>> {
  const response = await handleProduce(
    {
      acks: -1,
      timeoutMs: 1000,
      topicData: [
        {
          name: 't',
          partitionData: [
            { index: 0, records: await records() },
            { index: 1, records: await records() },
          ],
        },
      ],
    },
    context(0, 9),
  );
  return response.responses[0]!.partitionResponses.map((p) => [p.errorCode, p.baseOffset, p.logStartOffset]);
}

describe('a Produce pass', () => {
  it('asks storage for no shard info once the next offsets are known, and answers the log start of the append', async () => {
    const plain = () => encodeRecordBatch({ records: [{ value: 'a' }, { value: 'b' }] });
    await produceBoth(plain);
    // Moved behind the broker's back: only the append can tell it.
    expect(await storage.deleteBefore('t/0', 1)).toBe(1);
    storage.infoCalls.length = 0;
    expect(await produceBoth(plain)).toEqual([
      [KafkaErrorCode.none, 2n, 1n],
      [KafkaErrorCode.none, 2n, 0n],
    ]);
    // Pipelined requests, read in one pass of the event loop.
    const pipelined = await Promise.all([produceBoth(plain), produceBoth(plain), produceBoth(plain)]);
    expect(pipelined.flat().map(([, base, logStart]) => [base, logStart])).toEqual([
      [4n, 1n],
      [4n, 0n],
      [6n, 1n],
      [6n, 0n],
      [8n, 1n],
      [8n, 0n],
    ]);
    expect(storage.infoCalls).toEqual([]);
  });

  it('of an idempotent producer asks storage for no shard info once its partitions are known', async () => {
    const init = await handleInitProducerId(
      { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 },
      context(22, 4),
    );
    expect(init.errorCode).toBe(0);
    let sequence = 0;
    const idempotent = () =>
      encodeRecordBatch({
        records: [{ value: `v${sequence}` }],
        producerId: init.producerId,
        producerEpoch: init.producerEpoch,
        // One sequence per partition: both partitions get the same numbers.
        baseSequence: Math.floor(sequence++ / 2),
      });
    await produceBoth(idempotent);
    storage.infoCalls.length = 0;
    expect(await produceBoth(idempotent)).toEqual([
      [KafkaErrorCode.none, 1n, 0n],
      [KafkaErrorCode.none, 1n, 0n],
    ]);
    expect(storage.infoCalls).toEqual([]);
  });
});
