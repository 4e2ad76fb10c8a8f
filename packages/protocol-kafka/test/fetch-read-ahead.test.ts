import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeRecordBatches,
  encodeRecordBatch,
  type CreateTopicsResponse,
  type DeleteRecordsResponse,
  type FetchResponse,
  type ProduceResponse,
} from '../src/codec/index.js';
import { run } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type KafkaServer } from './helpers/server.js';

// Fetch reads a partition ahead of its consumer (the next span is read while a response is being
// written). Consumers must still get every record, in order, exactly as a Fetch without it would
// give them, whatever happens to the partition between two fetches.

const KCAT = '/usr/bin/kcat';
const KiB = 1024;
const OFFSET_OUT_OF_RANGE = 1;

let server: KafkaServer;
let client: RawClient;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  server = await startServer();
  client = await RawClient.open(server.port);
  kafka = new Kafka({
    brokers: [`127.0.0.1:${server.port}`],
    logLevel: logLevel.NOTHING,
    clientId: 'read-ahead',
  });
  admin = kafka.admin();
  await admin.connect();
}, 30_000);

afterAll(async () => {
  await admin?.disconnect();
  client?.close();
  await server?.stop();
});

async function createTopic(name: string, partitions = 1): Promise<void> {
  const created = await client.request<CreateTopicsResponse>(19, 7, {
    topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });
  expect(created.topics[0]!.errorCode).toBe(0);
}

/** Produces one batch of `count` records `<label>-<i>` of `size` bytes each; returns the batch size. */
async function produce(
  topic: string,
  label: string,
  count: number,
  size: number,
  partition = 0,
): Promise<number> {
  const batch = await encodeRecordBatch({
    records: Array.from({ length: count }, (_, i) => ({ value: `${label}-${i}|`.padEnd(size, '.') })),
  });
  const response = await client.request<ProduceResponse>(0, 9, {
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }],
  });
  expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
  return batch.length;
}

interface Fetched {
  errorCode: number;
  highWatermark: bigint;
  logStartOffset: bigint;
  /** Each record as `offset:label` (the value up to its `|`). */
  records: string[];
}

/** One Fetch of several partitions of `topic`, each from its offset; the answers by partition. */
async function fetchPartitions(
  topic: string,
  offsets: ReadonlyMap<number, number>,
  partitionMaxBytes: number,
  isolationLevel = 0,
): Promise<Map<number, Fetched>> {
  const response = await client.request<FetchResponse>(1, 12, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 64 * 1024 * 1024,
    isolationLevel,
    topics: [
      {
        topic,
        partitions: [...offsets].map(([partition, offset]) => ({
          partition,
          fetchOffset: BigInt(offset),
          partitionMaxBytes,
        })),
      },
    ],
  });
  return new Map(
    response.responses[0]!.partitions.map((data) => [
      data.partitionIndex,
      {
        errorCode: data.errorCode,
        highWatermark: data.highWatermark,
        logStartOffset: data.logStartOffset ?? -1n,
        records: decodeRecordBatches(data.records ?? Buffer.alloc(0)).flatMap((batch) =>
          batch.records.map((record) => `${record.offset}:${record.value!.toString().split('|')[0]}`),
        ),
      },
    ]),
  );
}

async function fetchFrom(
  topic: string,
  offset: number,
  partitionMaxBytes: number,
  isolationLevel = 0,
): Promise<Fetched> {
  return (await fetchPartitions(topic, new Map([[0, offset]]), partitionMaxBytes, isolationLevel)).get(0)!;
}

function labels(label: string, from: number, count: number, offset: number): string[] {
  return Array.from({ length: count }, (_, i) => `${offset + i}:${label}-${from + i}`);
}

/** Lets a read ahead started by the previous response finish before the partition changes. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 200));
}

describe('Fetch reading ahead of the consumer', () => {
  it('serves records appended after the read ahead reached the log end', async () => {
    await createTopic('ra-appended');
    const first = await produce('ra-appended', 'a', 10, 4 * KiB); // offsets 0-9
    await produce('ra-appended', 'b', 2, 100); // offsets 10-11
    // Room for the first batch only: the broker reads ahead from 10 and reaches the log end.
    const one = await fetchFrom('ra-appended', 0, first);
    expect(one.records).toEqual(labels('a', 0, 10, 0));
    expect(one.highWatermark).toBe(12n);
    await settle();
    await produce('ra-appended', 'c', 2, 100); // offsets 12-13
    const two = await fetchFrom('ra-appended', 10, first);
    expect(two.records).toEqual([...labels('b', 0, 2, 10), ...labels('c', 0, 2, 12)]);
    expect(two.highWatermark).toBe(14n);
  });

  it('answers a seek back, and a smaller partition limit, as without reading ahead', async () => {
    await createTopic('ra-seek');
    const size = await produce('ra-seek', 'a', 4, 1 * KiB); // 0-3
    await produce('ra-seek', 'b', 4, 1 * KiB); // 4-7
    await produce('ra-seek', 'c', 4, 1 * KiB); // 8-11
    await produce('ra-seek', 'd', 4, 1 * KiB); // 12-15
    expect((await fetchFrom('ra-seek', 0, size)).records).toEqual(labels('a', 0, 4, 0));
    await settle();
    // Read ahead from 4; the consumer seeks back to 0 instead.
    expect((await fetchFrom('ra-seek', 0, 2 * size)).records).toEqual([
      ...labels('a', 0, 4, 0),
      ...labels('b', 0, 4, 4),
    ]);
    await settle();
    // Read ahead from 8 with room for two batches; the consumer asks for one.
    expect((await fetchFrom('ra-seek', 8, size)).records).toEqual(labels('c', 0, 4, 8));
    await settle();
    // Read ahead from 12; the consumer seeks forward into the middle of a batch.
    const middle = await fetchFrom('ra-seek', 14, size);
    expect(middle.records).toEqual(labels('d', 0, 4, 12));
    // A client skips the records before its offset; the next offset follows the batch.
    expect((await fetchFrom('ra-seek', 16, size)).records).toEqual([]);
  });

  it('serves each partition right when the next Fetch asks for another set of partitions', async () => {
    await createTopic('ra-partitions', 2);
    let size = 0;
    for (let b = 0; b < 3; b++) {
      size = await produce('ra-partitions', `p0b${b}`, 4, 1 * KiB, 0); // 0-11
      await produce('ra-partitions', `p1b${b}`, 4, 1 * KiB, 1); // 0-11
    }
    const both = await fetchPartitions(
      'ra-partitions',
      new Map([
        [0, 0],
        [1, 0],
      ]),
      size,
    );
    expect(both.get(0)!.records).toEqual(labels('p0b0', 0, 4, 0));
    expect(both.get(1)!.records).toEqual(labels('p1b0', 0, 4, 0));
    await settle();
    // Only partition 1 next, then partition 0 after more was written to it.
    expect((await fetchPartitions('ra-partitions', new Map([[1, 4]]), size)).get(1)!.records).toEqual(
      labels('p1b1', 0, 4, 4),
    );
    await produce('ra-partitions', 'p0b3', 4, 1 * KiB, 0); // 12-15
    const zero = (await fetchPartitions('ra-partitions', new Map([[0, 4]]), 2 * size)).get(0)!;
    expect(zero.records).toEqual([...labels('p0b1', 0, 4, 4), ...labels('p0b2', 0, 4, 8)]);
    expect(zero.highWatermark).toBe(16n);
    // Partition 0's read ahead from 12, asked together with partition 1 from 8.
    await settle();
    const again = await fetchPartitions(
      'ra-partitions',
      new Map([
        [1, 8],
        [0, 12],
      ]),
      2 * size,
    );
    expect(again.get(1)!.records).toEqual(labels('p1b2', 0, 4, 8));
    expect(again.get(0)!.records).toEqual(labels('p0b3', 0, 4, 12));
  });

  it('serves the same through READ_COMMITTED as through READ_UNCOMMITTED', async () => {
    await createTopic('ra-committed');
    for (let i = 0; i < 6; i++) await produce('ra-committed', `batch${i}`, 3, 2 * KiB);
    const seen: string[] = [];
    let offset = 0;
    for (let i = 0; i < 6; i++) {
      const { records, highWatermark } = await fetchFrom('ra-committed', offset, 3 * 2 * KiB, 1);
      expect(highWatermark).toBe(18n);
      seen.push(...records);
      offset = Number(records[records.length - 1]!.split(':')[0]) + 1;
    }
    expect(seen).toEqual(Array.from({ length: 6 }, (_, b) => labels(`batch${b}`, 0, 3, 3 * b)).flat());
    await server.waitForMetric(/robustmq_kafka_fetch_reads_ahead_total\{.*outcome="used".*\} [1-9]/);
  });

  it('answers OFFSET_OUT_OF_RANGE once records were deleted past the offset read ahead', async () => {
    await createTopic('ra-deleted-records');
    const size = await produce('ra-deleted-records', 'a', 5, 1 * KiB); // 0-4
    await produce('ra-deleted-records', 'b', 5, 1 * KiB); // 5-9
    await produce('ra-deleted-records', 'c', 5, 1 * KiB); // 10-14
    expect((await fetchFrom('ra-deleted-records', 0, size)).records).toEqual(labels('a', 0, 5, 0));
    await settle();
    const deleted = await client.request<DeleteRecordsResponse>(21, 2, {
      topics: [{ name: 'ra-deleted-records', partitions: [{ partitionIndex: 0, offset: 7n }] }],
      timeoutMs: 5000,
    });
    expect(deleted.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, lowWatermark: 7n });
    const gone = await fetchFrom('ra-deleted-records', 5, size);
    expect(gone.errorCode).toBe(OFFSET_OUT_OF_RANGE);
    expect(gone.records).toEqual([]);
    expect(gone.logStartOffset).toBe(7n);
  });

  it('serves the new topic after the topic was deleted and created again', async () => {
    await createTopic('ra-recreated');
    const size = await produce('ra-recreated', 'old', 5, 1 * KiB); // 0-4
    await produce('ra-recreated', 'old', 5, 1 * KiB); // 5-9
    await produce('ra-recreated', 'old', 5, 1 * KiB); // 10-14: the read ahead of 5-9 stops for size
    expect((await fetchFrom('ra-recreated', 0, size)).records).toEqual(labels('old', 0, 5, 0));
    await settle();
    await admin.deleteTopics({ topics: ['ra-recreated'] });
    await createTopic('ra-recreated');
    for (let i = 0; i < 4; i++) await produce('ra-recreated', `new${i}`, 5, 1 * KiB);
    const next = await fetchFrom('ra-recreated', 5, size);
    expect(next.errorCode).toBe(0);
    expect(next.records).toEqual(labels('new1', 0, 5, 5));
  });

  it('gives a KafkaJS group consumer every record in order while a producer keeps adding', async () => {
    const topic = 'ra-kafkajs';
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const producer = kafka.producer();
    await producer.connect();
    const total = 3000;
    const value = (i: number) => `record-${i}|`.padEnd(900, '.');
    // Half before the consumer starts, half while it reads.
    for (let i = 0; i < total / 2; i += 50) {
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: 50 }, (_, j) => ({ value: value(i + j) })),
      });
    }
    const consumer = kafka.consumer({
      groupId: 'ra-kafkajs-group',
      maxBytesPerPartition: 64 * KiB,
      maxBytes: 64 * KiB,
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: string[] = [];
    try {
      const all = new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: ({ message }) => {
              seen.push(`${message.offset}:${message.value!.toString().split('|')[0]}`);
              if (seen.length === total) resolve();
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
      for (let i = total / 2; i < total; i += 50) {
        await producer.send({
          topic,
          acks: -1,
          messages: Array.from({ length: 50 }, (_, j) => ({ value: value(i + j) })),
        });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await all;
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => `${i}:record-${i}`));
  }, 60_000);

  it('gives kcat (librdkafka, which fetches ahead itself) every record in order', async () => {
    const topic = 'ra-kcat';
    await createTopic(topic);
    for (let b = 0; b < 40; b++) await produce(topic, `b${b}`, 25, 1 * KiB);
    const { stdout } = await run(KCAT, [
      '-b',
      `127.0.0.1:${server.port}`,
      '-t',
      topic,
      '-C',
      '-o',
      'beginning',
      '-e',
      '-X',
      'fetch.message.max.bytes=32768',
      '-f',
      '%o:%s\\n',
    ]);
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => line.split('|')[0]);
    expect(lines).toEqual(Array.from({ length: 40 }, (_, b) => labels(`b${b}`, 0, 25, 25 * b)).flat());
  }, 60_000);
});
