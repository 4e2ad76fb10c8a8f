import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KafkaErrorCode as E } from '../src/codec/error-codes.js';
import type { CreateTopicsResponse } from '../src/codec/messages/create-topics-response.js';
import type { InitProducerIdResponse } from '../src/codec/messages/init-producer-id-response.js';
import type { ProduceResponse } from '../src/codec/messages/produce-response.js';
import { decodeRecordBatch, encodeRecordBatch } from '../src/codec/record-batch.js';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { startFaultyNode, type FaultyNode } from './helpers/faulty-node.js';
import { RawClient } from './helpers/raw-client.js';

// Idempotent producers when storage fails under them: each acknowledged record is stored once.

let node: FaultyNode;
let client: RawClient;

beforeAll(async () => {
  node = await startFaultyNode();
  client = await RawClient.open(node.port);
});

afterEach(() => node.storage.heal());

afterAll(async () => {
  client?.close();
  await node?.stop();
});

async function createTopic(name: string, numPartitions = 1): Promise<void> {
  const response = await client.request<CreateTopicsResponse>(19, 7, {
    topics: [{ name, numPartitions, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
    validateOnly: false,
  });
  expect(response.topics[0]!.errorCode).toBe(E.none);
}

/** Each stored batch of the partition as [base offset, record count]. */
async function storedBatches(topic: string, partition = 0): Promise<Array<[number, number]>> {
  const read = await node.storage.inner.read(`${topic}/${partition}`, 0, { maxBytes: 1 << 20 });
  return read.batches.map((batch) => [batch.baseOffset, batch.recordCount]);
}

/** The values stored in the partition, in offset order. */
async function storedValues(topic: string, partition: number): Promise<string[]> {
  const read = await node.storage.inner.read(`${topic}/${partition}`, 0, { maxBytes: 1 << 20 });
  return read.batches.flatMap((batch) =>
    decodeRecordBatch(batch.data).records.map((record) => String(record.value)),
  );
}

// An append storage answers TIMEOUT may still be carried out, after the producer's retry has been
// checked against the log: a journal node that queued it and answered too late. The retry must be
// answered as the batch it is, not stored a second time behind it.
describe('an idempotent batch whose append lands after it timed out', () => {
  it('answers the retry with the offset the first try got, and stores the batch once', async () => {
    const topic = 'late-raw';
    await createTopic(topic);
    const init = await client.request<InitProducerIdResponse>(22, 4, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    });
    const produce = async (baseSequence: number, count: number) => {
      const records = await encodeRecordBatch({
        records: Array.from({ length: count }, (_, i) => ({ value: `seq-${baseSequence + i}` })),
        producerId: init.producerId,
        producerEpoch: init.producerEpoch,
        baseSequence,
      });
      const response = await client.request<ProduceResponse>(0, 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
      });
      const partition = response.responses[0]!.partitionResponses[0]!;
      return { errorCode: partition.errorCode, baseOffset: Number(partition.baseOffset) };
    };

    expect(await produce(0, 2)).toEqual({ errorCode: E.none, baseOffset: 0 });
    node.storage.landLate(topic);
    expect((await produce(2, 5)).errorCode).toBe(E.requestTimedOut);
    expect(await storedBatches(topic)).toEqual([[0, 2]]);
    // The retry finds the log as the failed try left it, but the first try is stored before it.
    expect(await produce(2, 5)).toEqual({ errorCode: E.none, baseOffset: 2 });
    expect(await produce(7, 1)).toEqual({ errorCode: E.none, baseOffset: 7 });
    expect(await storedBatches(topic)).toEqual([
      [0, 2],
      [2, 5],
      [7, 1],
    ]);
  });

  it('leaves a KafkaJS idempotent producer with each record stored once', async () => {
    const topic = 'late-kafkajs';
    await createTopic(topic);
    const kafka = new Kafka({
      brokers: [`127.0.0.1:${node.port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 50 },
    });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await producer.send({ topic, messages: [{ value: 'first' }] });
      const timedOut = node.storage.hits;
      node.storage.landLate(topic);
      const [sent] = await producer.send({
        topic,
        messages: ['a', 'b', 'c', 'd', 'e'].map((value) => ({ value })),
      });
      expect(sent).toMatchObject({ errorCode: 0, baseOffset: '1' });
      expect(node.storage.hits).toBe(timedOut + 1);
      await producer.send({ topic, messages: [{ value: 'last' }] });
    } finally {
      await producer.disconnect();
    }
    expect(await storedBatches(topic)).toEqual([
      [0, 1],
      [1, 5],
      [6, 1],
    ]);
  });
});

// KafkaJS takes back the sequence numbers of every partition of a request that failed, also those
// stored, and when it gives up on the send (an error it does not retry) it sends its next records
// under those numbers. Answered as the stored batches, they would be acknowledged and never stored;
// refused, the producer would be refused on every send from then on.
describe('an idempotent producer that gives up on a send', () => {
  /**
   * A KafkaJS idempotent producer to a 3-partition topic, sending `count` records keyed the same
   * way each time (so each send puts as many records in each partition): `acknowledged` lists the
   * values of the sends that succeeded.
   */
  async function keyedProducer(topic: string) {
    await createTopic(topic, 3);
    const kafka = new Kafka({
      brokers: [`127.0.0.1:${node.port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 50 },
    });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const acknowledged: string[] = [];
    const send = async (label: string, count: number) => {
      const values = Array.from({ length: count }, (_, i) => `${label}-${i}`);
      const answers = await producer.send({
        topic,
        messages: values.map((value, i) => ({ key: `key-${i}`, value })),
      });
      acknowledged.push(...values);
      return answers;
    };
    /** Partition 1 refuses appends with an error KafkaJS does not retry, until healed. */
    const refuseOnePartition = () =>
      node.storage.fail(
        'append',
        `${topic}/1`,
        () => new RobustMQError(ErrorCode.InvalidArgument, 'refused for the test'),
      );
    /** Every value stored in the topic. */
    const stored = async () => [
      ...(await storedValues(topic, 0)),
      ...(await storedValues(topic, 1)),
      ...(await storedValues(topic, 2)),
    ];
    return { producer, send, acknowledged, refuseOnePartition, stored };
  }

  it('has the records of its next send stored, though they come under the numbers of stored ones', async () => {
    const { producer, send, acknowledged, refuseOnePartition, stored } = await keyedProducer('given-up');
    try {
      const first = await send('first', 12);
      expect(new Set(first.map((answer) => answer.partition))).toEqual(new Set([0, 1, 2]));
      refuseOnePartition();
      await expect(send('failed', 12)).rejects.toThrow();
      node.storage.heal();
      await send('next', 12);
    } finally {
      await producer.disconnect();
    }
    const values = await stored();
    expect(acknowledged.filter((value) => !values.includes(value))).toEqual([]);
    // What the failed send stored in the other partitions stays, once each.
    expect(values.filter((value) => value.startsWith('failed-')).length).toBeGreaterThan(0);
    expect(new Set(values).size).toBe(values.length);
  });

  it('is not refused from then on: its next records are stored under the numbers it reuses', async () => {
    const { producer, send, acknowledged, refuseOnePartition, stored } =
      await keyedProducer('given-up-fewer');
    try {
      refuseOnePartition();
      await expect(send('failed', 12)).rejects.toThrow();
      node.storage.heal();
      // Fewer records per partition than the batches stored under the same numbers.
      await send('next', 4);
      await send('last', 12);
    } finally {
      await producer.disconnect();
    }
    const values = await stored();
    expect(acknowledged.filter((value) => !values.includes(value))).toEqual([]);
    expect(new Set(values).size).toBe(values.length);
  });
});
