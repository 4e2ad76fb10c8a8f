import { join } from 'node:path';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeRecordBatch,
  KafkaErrorCode,
  type ApiVersionsResponse,
  type CreatePartitionsResponse,
  type CreateTopicsResponse,
  type DeleteRecordsResponse,
  type FetchResponse,
  type InitProducerIdResponse,
  type ListOffsetsResponse,
  type MetadataResponse,
  type OffsetForLeaderEpochResponse,
  type ProduceResponse,
} from '../src/codec/index.js';
import {
  diskFull,
  rocksDiskFull,
  startFaultyNode,
  unavailable,
  type FaultyNode,
} from './helpers/faulty-node.js';
import { run } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';

// Storage that cannot serve (a bucket down, a journal node unreachable, a full disk) is answered
// with the codes Kafka uses and clients retry on, so consumers and producers ride the outage out.

const PYTHON_OUTAGE = join(import.meta.dirname, 'helpers/kafka_python_outage.py');
const KCAT = '/usr/bin/kcat';
let node: FaultyNode;
let client: RawClient;

beforeAll(async () => {
  node = await startFaultyNode();
  client = await RawClient.open(node.port);
});

afterEach(() => {
  node.storage.heal();
  node.meta.heal();
});

afterAll(async () => {
  client?.close();
  await node?.stop();
});

function createTopics(names: readonly string[]): Promise<CreateTopicsResponse> {
  return client.request<CreateTopicsResponse>(19, 7, {
    topics: names.map((name) => ({
      name,
      numPartitions: 1,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    })),
    timeoutMs: 5000,
  });
}

async function createTopic(name: string): Promise<void> {
  expect((await createTopics([name])).topics[0]!.errorCode).toBe(0);
}

/** The Fetch of partition 0 of `topic` from offset 0. */
function fetch(topic: string, maxWaitMs = 0, c: RawClient = client): Promise<FetchResponse> {
  return c.request<FetchResponse>(1, 12, {
    replicaId: -1,
    maxWaitMs,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
  });
}

function metadata(topics: readonly string[]): Promise<MetadataResponse> {
  return client.request<MetadataResponse>(3, 9, {
    topics: topics.map((name) => ({ name })),
    allowAutoTopicCreation: true,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
}

/** A request on the same connection is still answered. */
async function stillOpen(): Promise<void> {
  const versions = await client.request<ApiVersionsResponse>(18, 3, {
    clientSoftwareName: 'test',
    clientSoftwareVersion: '1',
  });
  expect(versions.errorCode).toBe(0);
}

function timedOut(): RobustMQError {
  return new RobustMQError(ErrorCode.Timeout, 'the journal node did not answer in time');
}

async function produce(topic: string, values: readonly string[]): Promise<ProduceResponse> {
  const records = await encodeRecordBatch({ records: values.map((value) => ({ value })) });
  return client.request<ProduceResponse>(0, 9, {
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  });
}

/** Resolves once the storage has refused `count` more calls. */
async function refusals(count: number): Promise<void> {
  const target = node.storage.hits + count;
  const deadline = Date.now() + 15_000;
  while (node.storage.hits < target) {
    if (Date.now() > deadline) throw new Error('the client never reached the failing storage');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface PythonReport {
  records: string[];
  error: string | null;
}

function python(topic: string, count: number, mode: 'consume' | 'produce'): Promise<PythonReport> {
  return run('/usr/bin/python3', [PYTHON_OUTAGE, `127.0.0.1:${node.port}`, topic, String(count), mode], {
    timeoutMs: 60_000,
  }).then(({ stdout }) => JSON.parse(stdout.trim().split('\n').at(-1)!) as PythonReport);
}

describe('a storage outage', () => {
  it('does not end a kafka-python consumer: it reads on once storage is back', async () => {
    const topic = 'outage-py-consume';
    await createTopic(topic);
    expect((await produce(topic, ['a', 'b', 'c'])).responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
    node.storage.fail('read', topic, unavailable);
    const consumed = python(topic, 3, 'consume');
    // A client that gives up on the first refusal ends before a third.
    await Promise.race([refusals(3), consumed]);
    node.storage.heal();
    expect(await consumed).toEqual({ records: ['a', 'b', 'c'], error: null });
  }, 60_000);

  it('answers each partition API with a code clients retry on', async () => {
    const topic = 'outage-codes';
    await createTopic(topic);
    expect((await produce(topic, ['x'])).responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
    const E = KafkaErrorCode;
    const cases = [
      { error: unavailable, read: E.notLeaderOrFollower, write: E.notLeaderOrFollower },
      { error: diskFull, read: E.kafkaStorageError, write: E.kafkaStorageError },
      { error: rocksDiskFull, read: E.kafkaStorageError, write: E.kafkaStorageError },
      // A write whose effect is unknown is a timeout, as Kafka answers one not replicated in time.
      { error: timedOut, read: E.notLeaderOrFollower, write: E.requestTimedOut },
    ];
    for (const { error, read, write } of cases) {
      for (const call of ['read', 'shardInfo', 'append', 'deleteBefore', 'offsetForTimestamp'] as const) {
        node.storage.fail(call, topic, error);
      }
      const fetched = await fetch(topic);
      expect(fetched.responses[0]!.partitions[0]!.errorCode, `Fetch, ${error.name}`).toBe(read);
      for (const timestamp of [-1n, -2n, -3n, 1000n]) {
        const listed = await client.request<ListOffsetsResponse>(2, 7, {
          replicaId: -1,
          isolationLevel: 0,
          topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] }],
        });
        expect(listed.topics[0]!.partitions[0]!.errorCode, `ListOffsets ${timestamp}, ${error.name}`).toBe(
          read,
        );
      }
      const epochs = await client.request<OffsetForLeaderEpochResponse>(23, 4, {
        replicaId: -1,
        topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] }],
      });
      expect(epochs.topics[0]!.partitions[0]!.errorCode, `OffsetForLeaderEpoch, ${error.name}`).toBe(read);
      const deleted = await client.request<DeleteRecordsResponse>(21, 2, {
        topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset: 0n }] }],
        timeoutMs: 5000,
      });
      expect(deleted.topics[0]!.partitions[0]!.errorCode, `DeleteRecords, ${error.name}`).toBe(write);
      const produced = await produce(topic, ['y']);
      expect(produced.responses[0]!.partitionResponses[0]!.errorCode, `Produce, ${error.name}`).toBe(write);
      node.storage.heal();
    }
  }, 30_000);

  it('answers a Fetch of a partition whose storage is down at max_wait_ms, not at once', async () => {
    const topic = 'outage-wait';
    await createTopic(topic);
    node.storage.fail('read', topic, unavailable);
    node.storage.fail('shardInfo', topic, unavailable);
    const started = Date.now();
    const fetched = await fetch(topic, 400);
    expect(fetched.responses[0]!.partitions[0]!.errorCode).toBe(KafkaErrorCode.notLeaderOrFollower);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
  }, 30_000);

  it('does not end kcat (librdkafka) on a full disk: it produces and consumes once space is back', async () => {
    const topic = 'outage-kcat';
    await createTopic(topic);
    const bootstrap = `127.0.0.1:${node.port}`;
    node.storage.fail('append', topic, diskFull);
    const produced = run(KCAT, ['-b', bootstrap, '-t', topic, '-P', '-p', '0'], { input: 'after-enospc\n' });
    await Promise.race([refusals(2), produced]);
    node.storage.heal();
    await produced;
    node.storage.fail('read', topic, diskFull);
    const consumed = run(KCAT, ['-b', bootstrap, '-t', topic, '-C', '-p', '0', '-o', 'beginning', '-c', '1']);
    await Promise.race([refusals(2), consumed]);
    node.storage.heal();
    expect((await consumed).stdout).toBe('after-enospc\n');
  }, 60_000);

  it('does not end a KafkaJS producer or consumer on a full disk', async () => {
    const topic = 'outage-kafkajs';
    await createTopic(topic);
    const kafka = new Kafka({
      brokers: [`127.0.0.1:${node.port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 500 },
    });
    const producer = kafka.producer();
    const consumer = kafka.consumer({
      groupId: 'outage-kafkajs',
      retry: { retries: 20, initialRetryTime: 100 },
    });
    try {
      await producer.connect();
      node.storage.fail('append', topic, diskFull);
      const sent = producer.send({ topic, messages: [{ value: 'kept' }] });
      await Promise.race([refusals(2), sent]);
      node.storage.heal();
      expect((await sent)[0]!.errorCode).toBe(0);

      node.storage.fail('read', topic, diskFull);
      const received: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) => Promise.resolve(void received.push(String(message.value))),
      });
      await refusals(2);
      node.storage.heal();
      const deadline = Date.now() + 20_000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(received).toEqual(['kept']);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
  }, 60_000);
});

describe('a topic that cannot be created or looked up now', () => {
  it('answers Metadata per topic, keeps the connection and creates the topic once space is back', async () => {
    await createTopic('outage-known');
    node.storage.fail('createShard', 'outage-auto', diskFull);
    const during = await metadata(['outage-auto', 'outage-known']);
    expect(during.topics.map((t) => [t.name, t.errorCode])).toEqual([
      ['outage-auto', KafkaErrorCode.leaderNotAvailable],
      ['outage-known', KafkaErrorCode.none],
    ]);
    await stillOpen();
    node.storage.heal();
    const after = await metadata(['outage-auto']);
    expect(after.topics[0]).toMatchObject({ name: 'outage-auto', errorCode: 0 });
    expect((await produce('outage-auto', ['made'])).responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
  });

  it('lets a kafka-python producer auto-create its topic once the disk has room again', async () => {
    const topic = 'outage-auto-python';
    node.storage.fail('createShard', topic, diskFull);
    const produced = python(topic, 2, 'produce');
    await Promise.race([refusals(2), produced]);
    node.storage.heal();
    expect(await produced).toEqual({ records: ['py-0', 'py-1'], error: null });
  }, 60_000);

  it('answers CreateTopics and CreatePartitions per topic on a full disk, and keeps the connection', async () => {
    node.storage.fail('createShard', 'outage-create', diskFull);
    const during = await createTopics(['outage-create', 'outage-other']);
    expect(during.topics.map((t) => [t.name, t.errorCode])).toEqual([
      ['outage-create', KafkaErrorCode.kafkaStorageError],
      ['outage-other', KafkaErrorCode.none],
    ]);
    expect(during.topics[0]!.errorMessage).toMatch(/ENOSPC/);
    node.storage.fail('createShard', 'outage-other', diskFull);
    const grown = await client.request<CreatePartitionsResponse>(37, 3, {
      topics: [{ name: 'outage-other', count: 2, assignments: null }],
      timeoutMs: 5000,
      validateOnly: false,
    });
    expect(grown.results[0]!.errorCode).toBe(KafkaErrorCode.kafkaStorageError);
    await stillOpen();
  });

  it('answers InitProducerId and Metadata with retriable codes when the meta store is down', async () => {
    await createTopic('outage-meta');
    node.meta.fail('/kafka/producer-ids', unavailable);
    const init = await client.request<InitProducerIdResponse>(22, 4, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    });
    expect(init.errorCode).toBe(KafkaErrorCode.coordinatorNotAvailable);
    node.meta.fail('/topics/outage-meta', unavailable);
    const looked = await metadata(['outage-meta']);
    expect(looked.topics[0]).toMatchObject({
      name: 'outage-meta',
      errorCode: KafkaErrorCode.leaderNotAvailable,
    });
    await stillOpen();
  });
});

describe('ListOffsets naming a partition twice', () => {
  it('answers each mention INVALID_REQUEST, as Kafka does, and the other partitions as usual', async () => {
    const topic = 'twice';
    await createTopic(topic);
    await createTopic('once');
    const listed = await client.request<ListOffsetsResponse>(2, 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [
        {
          name: topic,
          partitions: [
            { partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n },
            { partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -2n },
          ],
        },
        { name: 'once', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] },
        { name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] },
      ],
    });
    expect(listed.topics.map((t) => t.partitions.map((p) => p.errorCode))).toEqual([
      [KafkaErrorCode.invalidRequest, KafkaErrorCode.invalidRequest],
      [KafkaErrorCode.none],
      [KafkaErrorCode.invalidRequest],
    ]);
  });
});

describe('a Fetch naming no partition', () => {
  it('is answered once max_wait_ms has passed, not left hanging', async () => {
    const empty = await client.request<FetchResponse>(1, 12, {
      replicaId: -1,
      maxWaitMs: 200,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      topics: [],
    });
    expect(empty.responses).toEqual([]);
  });
});
