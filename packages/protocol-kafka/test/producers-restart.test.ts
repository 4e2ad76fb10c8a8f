import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KafkaErrorCode as E } from '../src/codec/error-codes.js';
import type { InitProducerIdResponse } from '../src/codec/messages/init-producer-id-response.js';
import type { ProduceResponse } from '../src/codec/messages/produce-response.js';
import { encodeRecordBatch } from '../src/codec/record-batch.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type KafkaServer } from './helpers/server.js';

async function produce(client: RawClient, producerId: bigint, baseSequence: number, count: number) {
  const records = await encodeRecordBatch({
    records: Array.from({ length: count }, (_, i) => ({ value: `seq-${baseSequence + i}` })),
    producerId,
    producerEpoch: 0,
    baseSequence,
  });
  const response = await client.request<ProduceResponse>(0, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: 'restart-idempotence', partitionData: [{ index: 0, records }] }],
  });
  const partition = response.responses[0]!.partitionResponses[0]!;
  return { errorCode: partition.errorCode, baseOffset: Number(partition.baseOffset) };
}

describe('idempotent producers across a broker restart', () => {
  it('answers a retry sent after kill -9 with the original offset, and refuses a gap', async () => {
    const first = await startServer();
    let second: KafkaServer | null = null;
    try {
      let client = await RawClient.open(first.port);
      // Metadata creates the topic, as a producer's first request would.
      await client.request(3, 4, { topics: [{ name: 'restart-idempotence' }], allowAutoTopicCreation: true });
      const init = await client.request<InitProducerIdResponse>(22, 4, {
        transactionalId: null,
        transactionTimeoutMs: 60_000,
        producerId: -1n,
        producerEpoch: -1,
      });
      expect(init.errorCode).toBe(E.none);
      const producerId = init.producerId;
      expect(await produce(client, producerId, 0, 5)).toEqual({ errorCode: E.none, baseOffset: 0 });
      expect(await produce(client, producerId, 5, 5)).toEqual({ errorCode: E.none, baseOffset: 5 });
      // A retry on the same broker.
      expect(await produce(client, producerId, 5, 5)).toEqual({ errorCode: E.none, baseOffset: 5 });
      client.close();
      await first.kill();

      second = await startServer({ dir: first.dir });
      client = await RawClient.open(second.port);
      // The producer never saw the answer to its last batch and sends it again to the new process.
      expect(await produce(client, producerId, 5, 5)).toEqual({ errorCode: E.none, baseOffset: 5 });
      expect((await produce(client, producerId, 20, 1)).errorCode).toBe(E.outOfOrderSequenceNumber);
      expect(await produce(client, producerId, 10, 2)).toEqual({ errorCode: E.none, baseOffset: 10 });
      // Producer ids keep growing across the restart.
      const next = await client.request<InitProducerIdResponse>(22, 4, {
        transactionalId: null,
        transactionTimeoutMs: 60_000,
        producerId: -1n,
        producerEpoch: -1,
      });
      expect(next.producerId).toBeGreaterThan(producerId);
      client.close();
    } finally {
      if (second) await second.stop();
      else await first.stop();
      rmSync(first.dir, { recursive: true, force: true });
    }
  }, 60_000);
});
