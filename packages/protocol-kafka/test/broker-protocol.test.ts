import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Compression,
  decodeRecordBatches,
  decodeResponse,
  encodeRecordBatch,
  encodeRequest,
  KafkaErrorCode,
  type ApiVersionsResponse,
  type CreatePartitionsResponse,
  type CreateTopicsResponse,
  type DeleteTopicsResponse,
  type DeleteRecordsResponse,
  type FetchResponse,
  type InitProducerIdResponse,
  type ListOffsetsResponse,
  type MetadataResponse,
  type ProduceResponse,
} from '../src/codec/index.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;
let client: RawClient;

beforeAll(async () => {
  server = await startServer({ kafka: ['auto_create_topics = true', 'max_frame_size = 1048576'] });
  client = await RawClient.open(server.port);
}, 30_000);

afterAll(async () => {
  client?.close();
  await server?.stop();
});

async function createTopic(
  name: string,
  partitions = 1,
  configs: Array<{ name: string; value: string }> = [],
) {
  const response = await client.request<CreateTopicsResponse>(19, 7, {
    topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs }],
    timeoutMs: 5000,
  });
  return response.topics[0]!;
}

async function produce(topic: string, records: Buffer | null, version = 9, acks = -1) {
  const response = await client.request<ProduceResponse>(0, version, {
    acks,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  });
  return response.responses[0]!.partitionResponses[0]!;
}

function fetchBody(
  topic: string,
  offset: number,
  options: { maxBytes?: number; maxWaitMs?: number; minBytes?: number } = {},
) {
  return {
    replicaId: -1,
    maxWaitMs: options.maxWaitMs ?? 0,
    minBytes: options.minBytes ?? 1,
    maxBytes: options.maxBytes ?? 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      { topic, partitions: [{ partition: 0, fetchOffset: BigInt(offset), partitionMaxBytes: 1 << 20 }] },
    ],
  };
}

describe('Kafka broker over the wire', () => {
  it('answers ApiVersions in every version, and an unknown one in the v0 body with UNSUPPORTED_VERSION', async () => {
    for (let version = 0; version <= 4; version++) {
      const response = await client.request<ApiVersionsResponse>(18, version, {
        clientSoftwareName: 'raw',
        clientSoftwareVersion: '1',
      });
      expect(response.errorCode).toBe(0);
      expect(response.apiKeys.find((k) => k.apiKey === 0)).toMatchObject({ minVersion: 0, maxVersion: 11 });
      expect(response.apiKeys.find((k) => k.apiKey === 1)).toMatchObject({ minVersion: 4, maxVersion: 12 });
    }
    // A version from the future: the body cannot be encoded by our codec, so write the header by hand.
    const frame = Buffer.alloc(4 + 10 + 8);
    frame.writeInt32BE(18, 0);
    frame.writeInt16BE(18, 4);
    frame.writeInt16BE(99, 6);
    frame.writeInt32BE(77, 8);
    frame.writeInt16BE(4, 12);
    frame.write('test', 14);
    client.socket.write(frame.subarray(0, 22));
    const decoded = decodeResponse(await client.nextFrame(), 18, 0);
    expect(decoded.correlationId).toBe(77);
    const body = decoded.response as ApiVersionsResponse;
    expect(body.errorCode).toBe(KafkaErrorCode.unsupportedVersion);
    expect(body.apiKeys.length).toBeGreaterThan(10);
  });

  it('creates topics through Metadata when allowed, and not when the client says no', async () => {
    const auto = await client.request<MetadataResponse>(3, 12, {
      topics: [{ name: 'auto-made' }],
      allowAutoTopicCreation: true,
    });
    expect(auto.topics[0]).toMatchObject({ errorCode: 0, name: 'auto-made' });
    expect(auto.topics[0]!.partitions).toHaveLength(1);
    expect(auto.brokers[0]!.port).toBe(server.port);
    const refused = await client.request<MetadataResponse>(3, 12, {
      topics: [{ name: 'not-made' }],
      allowAutoTopicCreation: false,
    });
    expect(refused.topics[0]!.errorCode).toBe(KafkaErrorCode.unknownTopicOrPartition);
    const bad = await client.request<MetadataResponse>(3, 1, { topics: [{ name: 'bad name!' }] });
    expect(bad.topics[0]!.errorCode).toBe(KafkaErrorCode.invalidTopicException);
  });

  it('stores a batch as produced, with the base offset assigned in place, and serves it unchanged', async () => {
    await createTopic('bytes');
    const batch = await encodeRecordBatch({
      records: [
        { key: 'a', value: 'one' },
        { key: 'b', value: 'two' },
      ],
      compression: Compression.snappy,
      baseOffset: 999,
    });
    expect((await produce('bytes', batch)).baseOffset).toBe(0n);
    expect((await produce('bytes', batch)).baseOffset).toBe(2n);
    const fetched = await client.request<FetchResponse>(1, 12, fetchBody('bytes', 0));
    const partition = fetched.responses[0]!.partitions[0]!;
    expect(partition.highWatermark).toBe(4n);
    const batches = decodeRecordBatches(partition.records!);
    expect(batches.map((b) => b.baseOffset)).toEqual([0, 2]);
    // Only the base offset and leader epoch differ from what the producer sent: the CRC part is identical.
    expect(partition.records!.subarray(21, batch.length).equals(batch.subarray(21))).toBe(true);
    expect(batches[1]!.records.map((r) => [r.offset, r.key!.toString(), r.value!.toString()])).toEqual([
      [2, 'a', 'one'],
      [3, 'b', 'two'],
    ]);
  });

  it('refuses corrupt CRCs, two batches, the wrong magic and zstd before Produce v7', async () => {
    await createTopic('strict');
    const batch = await encodeRecordBatch({ records: [{ value: 'x' }] });
    const corrupt = Buffer.from(batch);
    corrupt[corrupt.length - 1]! ^= 1;
    expect((await produce('strict', corrupt)).errorCode).toBe(KafkaErrorCode.corruptMessage);
    expect((await produce('strict', Buffer.concat([batch, batch]))).errorCode).toBe(
      KafkaErrorCode.invalidRecord,
    );
    const magic1 = Buffer.from(batch);
    magic1[16] = 1;
    expect((await produce('strict', magic1)).errorCode).toBe(KafkaErrorCode.invalidRecord);
    const zstd = await encodeRecordBatch({ records: [{ value: 'x' }], compression: Compression.zstd });
    expect((await produce('strict', zstd, 6)).errorCode).toBe(KafkaErrorCode.unsupportedCompressionType);
    expect((await produce('strict', zstd, 7)).errorCode).toBe(0);
    expect((await produce('no-such-topic-here', batch)).errorCode).toBe(
      KafkaErrorCode.unknownTopicOrPartition,
    );
    // Each refusal is a log line and a count.
    await server.waitForLog((line) => line.msg === 'produced batch refused' && line.topic === 'strict');
    await server.waitForMetric(/^robustmq_kafka_bad_input_total\{.*reason="bad_batch".*\} 4$/);
  });

  it('reads requests however the stream splits them: inside size prefixes, frames, several at once', async () => {
    await createTopic('split');
    const batch = await encodeRecordBatch({ records: [{ value: Buffer.alloc(100_000, 5) }] });
    const produceFrame = encodeRequest(
      { apiKey: 0, apiVersion: 9, correlationId: 501, clientId: 'split' },
      {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: 'split', partitionData: [{ index: 0, records: batch }] }],
      },
    );
    const metadataFrame = (correlationId: number) =>
      encodeRequest({ apiKey: 3, apiVersion: 12, correlationId, clientId: 'split' }, { topics: [] });
    const stream = Buffer.concat([metadataFrame(500), produceFrame, metadataFrame(502), metadataFrame(503)]);
    // Cuts in a size prefix (twice), in a header and in the records; the last piece but one holds
    // the end of the Produce request, a whole Metadata request and the start of another.
    const first = metadataFrame(0).length;
    const cuts = [2, first + 2, first + 30, first + 70_000, stream.length - 10];
    let from = 0;
    for (const cut of [...cuts, stream.length]) {
      client.socket.write(stream.subarray(from, cut));
      from = cut;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push(decodeResponse(await client.nextFrame(), i === 1 ? 0 : 3, i === 1 ? 9 : 12));
    expect(answers.map((answer) => answer.correlationId)).toEqual([500, 501, 502, 503]);
    const produced = (answers[1]!.response as ProduceResponse).responses[0]!.partitionResponses[0]!;
    expect(produced.errorCode).toBe(KafkaErrorCode.none);
    const fetched = await client.request<FetchResponse>(1, 12, fetchBody('split', 0));
    const records = decodeRecordBatches(fetched.responses[0]!.partitions[0]!.records!)[0]!.records;
    expect(records[0]!.value!.equals(Buffer.alloc(100_000, 5))).toBe(true);
  });

  it('sends nothing for acks=0 and keeps responses in request order', async () => {
    await createTopic('ordered');
    const batch = await encodeRecordBatch({ records: [{ value: 'fire and forget' }] });
    client.send(0, 9, {
      acks: 0,
      timeoutMs: 1000,
      topicData: [{ name: 'ordered', partitionData: [{ index: 0, records: batch }] }],
    });
    // A long poll first, then a quick Metadata: the Metadata answer must come second.
    const fetchId = client.send(1, 12, fetchBody('ordered', 1, { maxWaitMs: 300, minBytes: 1 }));
    const metadataId = client.send(3, 12, { topics: [] });
    const first = decodeResponse(await client.nextFrame(), 1, 12);
    const second = decodeResponse(await client.nextFrame(), 3, 12);
    expect([first.correlationId, second.correlationId]).toEqual([fetchId, metadataId]);
    const fetched = await client.request<FetchResponse>(1, 12, fetchBody('ordered', 0));
    expect(
      decodeRecordBatches(fetched.responses[0]!.partitions[0]!.records!)[0]!.records[0]!.value!.toString(),
    ).toBe('fire and forget');
  });

  it('overlaps pipelined Produce requests, answering in order with offsets in request order', async () => {
    await createTopic('pipelined');
    // Values above 32 KiB also take the Fetch path that sends records by reference.
    const values = Array.from({ length: 12 }, (_, i) => Buffer.alloc(i % 3 === 0 ? 40_000 : 100, i));
    const sent = await Promise.all(
      values.map(async (value) => {
        const records = await encodeRecordBatch({ records: [{ value }] });
        return client.send(0, 9, {
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name: 'pipelined', partitionData: [{ index: 0, records }] }],
        });
      }),
    );
    const metadataId = client.send(3, 12, { topics: [] });
    const answers = [];
    for (let i = 0; i < values.length; i++) answers.push(decodeResponse(await client.nextFrame(), 0, 9));
    const metadata = decodeResponse(await client.nextFrame(), 3, 12);
    expect(answers.map((answer) => answer.correlationId)).toEqual(sent);
    expect(metadata.correlationId).toBe(metadataId);
    const offsets = answers.map((answer) => {
      const partition = (answer.response as ProduceResponse).responses[0]!.partitionResponses[0]!;
      expect(partition.errorCode).toBe(KafkaErrorCode.none);
      return Number(partition.baseOffset);
    });
    expect(offsets).toEqual(values.map((_, i) => i));
    const fetched = await client.request<FetchResponse>(1, 12, fetchBody('pipelined', 0));
    const batches = decodeRecordBatches(fetched.responses[0]!.partitions[0]!.records!);
    expect(batches.map((batch) => batch.records[0]!.value)).toEqual(values);
  });

  it('keeps idempotent sequence checks right across pipelined Produce requests', async () => {
    await createTopic('pipelined-idempotent');
    const init = await client.request<InitProducerIdResponse>(22, 4, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    });
    expect(init.errorCode).toBe(KafkaErrorCode.none);
    // Sequences 0, 2, 4 (two records each), a retry of 2, then a gap at 10.
    const sequences = [0, 2, 4, 2, 10];
    const sent = await Promise.all(
      sequences.map(async (baseSequence) => {
        const records = await encodeRecordBatch({
          records: [{ value: `a${baseSequence}` }, { value: `b${baseSequence}` }],
          producerId: init.producerId,
          producerEpoch: init.producerEpoch,
          baseSequence,
        });
        return client.send(0, 9, {
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name: 'pipelined-idempotent', partitionData: [{ index: 0, records }] }],
        });
      }),
    );
    const answers = [];
    for (let i = 0; i < sequences.length; i++) answers.push(decodeResponse(await client.nextFrame(), 0, 9));
    expect(answers.map((answer) => answer.correlationId)).toEqual(sent);
    const results = answers.map((answer) => {
      const partition = (answer.response as ProduceResponse).responses[0]!.partitionResponses[0]!;
      return { errorCode: partition.errorCode, baseOffset: Number(partition.baseOffset) };
    });
    expect(results.slice(0, 4)).toEqual([
      { errorCode: KafkaErrorCode.none, baseOffset: 0 },
      { errorCode: KafkaErrorCode.none, baseOffset: 2 },
      { errorCode: KafkaErrorCode.none, baseOffset: 4 },
      { errorCode: KafkaErrorCode.none, baseOffset: 2 },
    ]);
    expect(results[4]!.errorCode).toBe(KafkaErrorCode.outOfOrderSequenceNumber);
  });

  it('answers Produce v5+ with the log start offset of the partition, also for retries and refused sequences', async () => {
    await createTopic('log-start');
    const init = await client.request<InitProducerIdResponse>(22, 4, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    });
    const batch = (baseSequence: number) =>
      encodeRecordBatch({
        records: [{ value: `a${baseSequence}` }, { value: `b${baseSequence}` }],
        producerId: init.producerId,
        producerEpoch: init.producerEpoch,
        baseSequence,
      });
    const answer = async (records: Buffer, version: number) => {
      const { errorCode, baseOffset, logStartOffset } = await produce('log-start', records, version);
      return { errorCode, baseOffset, logStartOffset };
    };
    expect(await answer(await batch(0), 5)).toEqual({ errorCode: 0, baseOffset: 0n, logStartOffset: 0n });
    expect(await answer(await batch(2), 9)).toEqual({ errorCode: 0, baseOffset: 2n, logStartOffset: 0n });
    const deleted = await client.request<DeleteRecordsResponse>(21, 2, {
      topics: [{ name: 'log-start', partitions: [{ partitionIndex: 0, offset: 3n }] }],
      timeoutMs: 5000,
    });
    expect(deleted.topics[0]!.partitions[0]!.errorCode).toBe(0);
    for (const version of [5, 11]) {
      // A retry of a stored batch and a gap in the sequence are answers about the partition too.
      expect(await answer(await batch(2), version)).toEqual({
        errorCode: 0,
        baseOffset: 2n,
        logStartOffset: 3n,
      });
      expect(await answer(await batch(10), version)).toEqual({
        errorCode: KafkaErrorCode.outOfOrderSequenceNumber,
        baseOffset: -1n,
        logStartOffset: 3n,
      });
    }
    expect(await answer(await batch(4), 7)).toEqual({ errorCode: 0, baseOffset: 4n, logStartOffset: 3n });
    const plain = await encodeRecordBatch({ records: [{ value: 'plain' }] });
    expect(await answer(plain, 9)).toEqual({ errorCode: 0, baseOffset: 6n, logStartOffset: 3n });
    // No partition to tell of: -1, as Kafka answers.
    expect((await produce('no-log-start-here', plain)).logStartOffset).toBe(-1n);
  });

  it("answers a retried idempotent batch with Kafka's append time: the original one, or under CreateTime the batch's max timestamp", async () => {
    await createTopic('retry-append-time', 1, [{ name: 'message.timestamp.type', value: 'LogAppendTime' }]);
    await createTopic('retry-create-time');
    const init = await client.request<InitProducerIdResponse>(22, 4, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    });
    const created = 1_700_000_000_000;
    const batch = () =>
      encodeRecordBatch({
        records: [
          { value: 'a', timestamp: created },
          { value: 'b', timestamp: created + 5 },
        ],
        producerId: init.producerId,
        producerEpoch: init.producerEpoch,
        baseSequence: 0,
      });
    const answer = async (topic: string) => {
      const { errorCode, baseOffset, logAppendTimeMs } = await produce(topic, await batch());
      return { errorCode, baseOffset, logAppendTimeMs };
    };
    const stamped = await answer('retry-append-time');
    expect(stamped.logAppendTimeMs).toBeGreaterThan(BigInt(created));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await answer('retry-append-time')).toEqual(stamped);
    expect(await answer('retry-create-time')).toEqual({ errorCode: 0, baseOffset: 0n, logAppendTimeMs: -1n });
    expect(await answer('retry-create-time')).toEqual({
      errorCode: 0,
      baseOffset: 0n,
      logAppendTimeMs: BigInt(created + 5),
    });
  });

  it('long-polls until data arrives', async () => {
    await createTopic('waiting');
    const other = await RawClient.open(server.port);
    try {
      const pending = other.request<FetchResponse>(1, 12, fetchBody('waiting', 0, { maxWaitMs: 20_000 }));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await produce('waiting', await encodeRecordBatch({ records: [{ value: 'wake up' }] }));
      const fetched = await pending;
      expect(
        decodeRecordBatches(fetched.responses[0]!.partitions[0]!.records!)[0]!.records[0]!.value!.toString(),
      ).toBe('wake up');
    } finally {
      other.close();
    }
  });

  it('answers a Fetch with min_bytes 0 at once, as Kafka does, instead of waiting out max_wait_ms', async () => {
    await createTopic('no-minimum');
    const started = Date.now();
    const fetched = await client.request<FetchResponse>(
      1,
      12,
      fetchBody('no-minimum', 0, { maxWaitMs: 10_000, minBytes: 0 }),
    );
    expect(fetched.responses[0]!.partitions[0]!.errorCode).toBe(KafkaErrorCode.none);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('returns at least one whole batch even above max_bytes', async () => {
    await createTopic('large');
    for (let i = 0; i < 3; i++) {
      await produce('large', await encodeRecordBatch({ records: [{ value: Buffer.alloc(10_000, i) }] }));
    }
    const fetched = await client.request<FetchResponse>(1, 12, fetchBody('large', 0, { maxBytes: 100 }));
    const batches = decodeRecordBatches(fetched.responses[0]!.partitions[0]!.records!);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.records[0]!.value!.length).toBe(10_000);
  });

  it('gives the first partition with data one whole batch when a byte limit is 0, as Kafka does (KIP-74)', async () => {
    await createTopic('zero-limits', 3);
    // Partition 0 stays empty; partitions 1 and 2 hold two batches each.
    for (const index of [1, 2]) {
      for (let i = 0; i < 2; i++) {
        const records = await encodeRecordBatch({ records: [{ value: `p${index}-${i}` }] });
        await client.request<ProduceResponse>(0, 9, {
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name: 'zero-limits', partitionData: [{ index, records }] }],
        });
      }
    }
    const fetchWith = async (version: number, maxBytes: number, partitionMaxBytes: number) => {
      const fetched = await client.request<FetchResponse>(1, version, {
        ...fetchBody('zero-limits', 0, { maxBytes }),
        topics: [
          {
            topic: 'zero-limits',
            partitions: [0, 1, 2].map((partition) => ({ partition, fetchOffset: 0n, partitionMaxBytes })),
          },
        ],
      });
      return fetched.responses[0]!.partitions.map((partition) => ({
        errorCode: partition.errorCode,
        highWatermark: partition.highWatermark,
        values: decodeRecordBatches(partition.records!).flatMap((batch) =>
          batch.records.map((record) => record.value!.toString()),
        ),
      }));
    };
    for (const version of [4, 12]) {
      const expected = [
        { errorCode: 0, highWatermark: 0n, values: [] },
        { errorCode: 0, highWatermark: 2n, values: ['p1-0'] },
        { errorCode: 0, highWatermark: 2n, values: [] },
      ];
      expect(await fetchWith(version, 1 << 20, 0)).toEqual(expected);
      expect(await fetchWith(version, 0, 1 << 20)).toEqual(expected);
    }
  });

  it('answers a negative byte limit as Kafka does: UNKNOWN_SERVER_ERROR for a partition with records to read', async () => {
    await createTopic('negative-limits', 3);
    // Partition 0 stays empty; partitions 1 and 2 hold two batches each.
    for (const index of [1, 2]) {
      for (let i = 0; i < 2; i++) {
        const records = await encodeRecordBatch({ records: [{ value: `p${index}-${i}` }] });
        await client.request<ProduceResponse>(0, 9, {
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name: 'negative-limits', partitionData: [{ index, records }] }],
        });
      }
    }
    const fetchWith = async (
      partitions: Array<{ partition: number; offset?: bigint }>,
      maxBytes: number,
      partitionMaxBytes: number,
    ) => {
      const fetched = await client.request<FetchResponse>(1, 12, {
        ...fetchBody('negative-limits', 0, { maxBytes }),
        topics: [
          {
            topic: 'negative-limits',
            partitions: partitions.map(({ partition, offset }) => ({
              partition,
              fetchOffset: offset ?? 0n,
              partitionMaxBytes,
            })),
          },
        ],
      });
      return fetched.responses[0]!.partitions.map((partition) => ({
        partition: partition.partitionIndex,
        errorCode: partition.errorCode,
        highWatermark: partition.highWatermark,
        logStartOffset: partition.logStartOffset,
        values: decodeRecordBatches(partition.records!).flatMap((batch) =>
          batch.records.map((record) => record.value!.toString()),
        ),
      }));
    };
    const failed = { errorCode: KafkaErrorCode.unknownServerError, highWatermark: -1n, logStartOffset: -1n };
    // Kafka reads each partition with what is left of max_bytes, and what is left is never below 0:
    // the first partition fails, the next is read as under a limit of 0.
    expect(await fetchWith([{ partition: 1 }, { partition: 2 }, { partition: 0 }], -1, 1 << 20)).toEqual([
      { partition: 1, ...failed, values: [] },
      { partition: 2, errorCode: 0, highWatermark: 2n, logStartOffset: 0n, values: ['p2-0'] },
      { partition: 0, errorCode: 0, highWatermark: 0n, logStartOffset: 0n, values: [] },
    ]);
    // A negative partition_max_bytes fails every partition with records at the fetch offset; one
    // read to its end is answered empty, an offset past the end is out of range as always.
    expect(
      await fetchWith([{ partition: 0 }, { partition: 1 }, { partition: 2, offset: 2n }], 1 << 20, -1),
    ).toEqual([
      { partition: 0, errorCode: 0, highWatermark: 0n, logStartOffset: 0n, values: [] },
      { partition: 1, ...failed, values: [] },
      { partition: 2, errorCode: 0, highWatermark: 2n, logStartOffset: 0n, values: [] },
    ]);
    expect(await fetchWith([{ partition: 2, offset: 5n }], 1 << 20, -1)).toEqual([
      {
        partition: 2,
        errorCode: KafkaErrorCode.offsetOutOfRange,
        highWatermark: 2n,
        logStartOffset: 0n,
        values: [],
      },
    ]);
    // Kafka waits for no more than max_bytes: a negative one is answered at once.
    const started = Date.now();
    const waited = await client.request<FetchResponse>(1, 12, {
      ...fetchBody('negative-limits', 0, { maxBytes: -1, maxWaitMs: 10_000, minBytes: 1 }),
    });
    expect(waited.responses[0]!.partitions[0]!.errorCode).toBe(KafkaErrorCode.none);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('lists offsets by position and timestamp, and DeleteRecords moves the log start', async () => {
    await createTopic('timeline');
    const base = 1_700_000_000_000;
    for (let i = 0; i < 4; i++) {
      await produce(
        'timeline',
        await encodeRecordBatch({
          records: [
            { value: `r${i}a`, timestamp: base + i * 1000 },
            { value: `r${i}b`, timestamp: base + i * 1000 + 500 },
          ],
        }),
      );
    }
    const list = async (timestamp: bigint) => {
      const response = await client.request<ListOffsetsResponse>(2, 7, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [
          { name: 'timeline', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] },
        ],
      });
      return response.topics[0]!.partitions[0]!;
    };
    expect((await list(-1n)).offset).toBe(8n);
    expect((await list(-2n)).offset).toBe(0n);
    expect(await list(BigInt(base + 1200))).toMatchObject({ offset: 3n, timestamp: BigInt(base + 1500) });
    expect(await list(-3n)).toMatchObject({ offset: 7n, timestamp: BigInt(base + 3500) });
    expect((await list(BigInt(base + 10_000))).offset).toBe(-1n);

    const deleted = await client.request<DeleteRecordsResponse>(21, 2, {
      topics: [{ name: 'timeline', partitions: [{ partitionIndex: 0, offset: 5n }] }],
      timeoutMs: 5000,
    });
    expect(deleted.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, lowWatermark: 5n });
    expect((await list(-2n)).offset).toBe(5n);
    const deleteTo = async (offset: bigint) =>
      (
        await client.request<DeleteRecordsResponse>(21, 2, {
          topics: [{ name: 'timeline', partitions: [{ partitionIndex: 0, offset }] }],
          timeoutMs: 5000,
        })
      ).topics[0]!.partitions[0]!;
    expect(await deleteTo(9n)).toMatchObject({
      errorCode: KafkaErrorCode.offsetOutOfRange,
      lowWatermark: -1n,
    });
    expect((await list(-2n)).offset).toBe(5n);
    const below = await client.request<FetchResponse>(1, 12, fetchBody('timeline', 1));
    expect(below.responses[0]!.partitions[0]!.errorCode).toBe(KafkaErrorCode.offsetOutOfRange);
    // An empty record set, not a null one (size -1), which librdkafka cannot parse.
    expect(below.responses[0]!.partitions[0]!.records).toEqual(Buffer.alloc(0));
    // A negative offset is below the log start too: out of range, so the client resets.
    for (const offset of [-1, -5]) {
      const negative = await client.request<FetchResponse>(1, 12, fetchBody('timeline', offset));
      expect(negative.responses[0]!.partitions[0]).toMatchObject({
        errorCode: KafkaErrorCode.offsetOutOfRange,
        highWatermark: 8n,
        logStartOffset: 5n,
      });
    }
  });
});

describe('topic admin over the wire', () => {
  it('creates neither of two topics of one name in one request, answering both INVALID_REQUEST, as Kafka does', async () => {
    const topic = (numPartitions: number) => ({
      name: 'named-twice',
      numPartitions,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    });
    const response = await client.request<CreateTopicsResponse>(19, 7, {
      topics: [topic(1), topic(2), { ...topic(1), name: 'named-once' }],
      timeoutMs: 5000,
    });
    expect(response.topics.map((t) => [t.name, t.errorCode])).toEqual([
      ['named-twice', KafkaErrorCode.invalidRequest],
      ['named-twice', KafkaErrorCode.invalidRequest],
      ['named-once', 0],
    ]);
    const metadata = await client.request<MetadataResponse>(3, 12, {
      topics: [{ name: 'named-twice' }],
      allowAutoTopicCreation: false,
    });
    expect(metadata.topics[0]!.errorCode).toBe(KafkaErrorCode.unknownTopicOrPartition);
  });

  it('reports topic ids in Metadata and deletes a topic by id (DeleteTopics v6)', async () => {
    const created = await createTopic('by-id', 3);
    expect(created.errorCode).toBe(0);
    const metadata = await client.request<MetadataResponse>(3, 12, { topics: [{ name: 'by-id' }] });
    const topicId = metadata.topics[0]!.topicId!;
    expect(topicId).toBe(created.topicId);
    expect(topicId).not.toBe('00000000-0000-0000-0000-000000000000');
    expect((await createTopic('by-id')).errorCode).toBe(KafkaErrorCode.topicAlreadyExists);

    const shrink = await client.request<CreatePartitionsResponse>(37, 3, {
      topics: [{ name: 'by-id', count: 2, assignments: null }],
      timeoutMs: 1000,
      validateOnly: false,
    });
    expect(shrink.results[0]!.errorCode).toBe(KafkaErrorCode.invalidPartitions);

    const deleted = await client.request<DeleteTopicsResponse>(20, 6, {
      topics: [{ name: null, topicId }],
      timeoutMs: 1000,
    });
    expect(deleted.responses[0]).toMatchObject({ name: 'by-id', errorCode: 0 });
    const gone = await client.request<MetadataResponse>(3, 12, {
      topics: [{ name: 'by-id' }],
      allowAutoTopicCreation: false,
    });
    expect(gone.topics[0]!.errorCode).toBe(KafkaErrorCode.unknownTopicOrPartition);
    const again = await client.request<DeleteTopicsResponse>(20, 6, {
      topics: [{ name: null, topicId }],
      timeoutMs: 1000,
    });
    expect(again.responses[0]!.errorCode).toBe(KafkaErrorCode.unknownTopicId);
  });
});

describe('topic admin over the wire: manual replica assignments', () => {
  async function createAssigned(
    name: string,
    assignments: Array<[number, number[]]>,
    options: {
      numPartitions?: number;
      replicationFactor?: number;
      validateOnly?: boolean;
      version?: number;
    } = {},
  ) {
    const response = await client.request<CreateTopicsResponse>(19, options.version ?? 7, {
      topics: [
        {
          name,
          numPartitions: options.numPartitions ?? -1,
          replicationFactor: options.replicationFactor ?? -1,
          assignments: assignments.map(([partitionIndex, brokerIds]) => ({ partitionIndex, brokerIds })),
          configs: [],
        },
      ],
      timeoutMs: 5000,
      validateOnly: options.validateOnly ?? false,
    });
    return response.topics[0]!;
  }

  it('creates one partition per assignment, numbered as given, each led by its broker', async () => {
    const { brokers } = await client.request<MetadataResponse>(3, 12, { topics: [] });
    const id = brokers[0]!.nodeId;
    const checked = await createAssigned('assigned-checked', [[0, [id]]], { validateOnly: true });
    expect(checked).toMatchObject({ errorCode: 0, numPartitions: 1, replicationFactor: 1 });
    const made = await createAssigned('assigned', [
      [2, [id]],
      [0, [id]],
      [1, [id]],
    ]);
    expect(made).toMatchObject({ errorCode: 0, numPartitions: 3, replicationFactor: 1 });
    expect((await createAssigned('assigned-v0', [[0, [id]]], { version: 0 })).errorCode).toBe(0);
    const metadata = await client.request<MetadataResponse>(3, 12, {
      topics: [{ name: 'assigned' }, { name: 'assigned-checked' }],
      allowAutoTopicCreation: false,
    });
    expect(metadata.topics[0]!.partitions.map((p) => [p.partitionIndex, p.leaderId])).toEqual([
      [0, id],
      [1, id],
      [2, id],
    ]);
    expect(metadata.topics[1]!.errorCode).toBe(KafkaErrorCode.unknownTopicOrPartition);
  });

  it("refuses an assignment Kafka's controller refuses, with its error code", async () => {
    const { brokers } = await client.request<MetadataResponse>(3, 12, { topics: [] });
    const id = brokers[0]!.nodeId;
    const refusals: Array<[Awaited<ReturnType<typeof createAssigned>>, number, RegExp]> = [
      [
        await createAssigned('bad-assignment', [[0, [id]]], { replicationFactor: 1 }),
        KafkaErrorCode.invalidRequest,
        /replication factor was not set to -1/,
      ],
      [
        await createAssigned('bad-assignment', [[0, [id]]], { numPartitions: 1 }),
        KafkaErrorCode.invalidRequest,
        /numPartitions was not set to -1/,
      ],
      [
        await createAssigned('bad-assignment', [
          [0, [id]],
          [0, [id]],
        ]),
        KafkaErrorCode.invalidReplicaAssignment,
        /multiple manual partition assignments for partition 0/,
      ],
      [
        await createAssigned('bad-assignment', [[0, []]]),
        KafkaErrorCode.invalidReplicaAssignment,
        /empty replica list/,
      ],
      [
        await createAssigned('bad-assignment', [[0, [id, id + 100]]]),
        KafkaErrorCode.invalidReplicaAssignment,
        new RegExp(`broker ${id + 100}, but no such broker is registered`),
      ],
      [
        await createAssigned('bad-assignment', [[0, [id, id]]]),
        KafkaErrorCode.invalidReplicaAssignment,
        new RegExp(`the broker ${id} more than once`),
      ],
      [
        await createAssigned('bad-assignment', [
          [0, [id]],
          [2, [id]],
        ]),
        KafkaErrorCode.invalidReplicaAssignment,
        /consecutive 0-based integer sequence/,
      ],
      [
        await createAssigned('bad-assignment', [[-1, [id]]]),
        KafkaErrorCode.invalidReplicaAssignment,
        /consecutive 0-based integer sequence/,
      ],
    ];
    for (const [answer, errorCode, message] of refusals) {
      expect(answer.errorCode).toBe(errorCode);
      expect(answer.errorMessage).toMatch(message);
    }
    const metadata = await client.request<MetadataResponse>(3, 12, {
      topics: [{ name: 'bad-assignment' }],
      allowAutoTopicCreation: false,
    });
    expect(metadata.topics[0]!.errorCode).toBe(KafkaErrorCode.unknownTopicOrPartition);
  });
});

describe('bad input', () => {
  it('closes a connection whose frame is above max_frame_size, and others carry on', async () => {
    const bad = await RawClient.open(server.port);
    const header = Buffer.alloc(4);
    header.writeInt32BE(50 * 1024 * 1024);
    bad.socket.write(header);
    await bad.closed;
    const metadata = await client.request<MetadataResponse>(3, 12, { topics: [] });
    expect(metadata.brokers).toHaveLength(1);
    await server.waitForMetric(/robustmq_kafka_bad_input_total\{.*reason="frame_size".*\} 1/);
  });

  it('survives frames cut short by a client that goes away', async () => {
    const quitter = await RawClient.open(server.port);
    const frame = Buffer.alloc(20);
    frame.writeInt32BE(100, 0);
    quitter.socket.end(frame);
    await quitter.closed;
    const truncatedHeader = await RawClient.open(server.port);
    truncatedHeader.socket.write(Buffer.from([0, 0, 0, 3, 0, 3, 0]));
    await truncatedHeader.closed;
    await server.waitForLog((line) => line.reason === 'bad_header');
    expect((await client.request<MetadataResponse>(3, 12, { topics: [] })).brokers).toHaveLength(1);
  });

  it('refuses Metadata v10 and v11 naming a topic only by id, in a response the client can read', async () => {
    const topicId = '0000a0a0-a0a0-a0a0-a0a0-000000000000';
    for (const version of [10, 11]) {
      const correlationId = client.send(3, version, {
        topics: [{ topicId, name: null }],
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      });
      // Decoding checks every field against the version: before v12 a topic name is never null.
      const decoded = decodeResponse(await client.nextFrame(), 3, version);
      expect(decoded.correlationId).toBe(correlationId);
      const { topics } = decoded.response as MetadataResponse;
      expect(topics).toEqual([
        expect.objectContaining({ name: '', errorCode: KafkaErrorCode.invalidRequest }),
      ]);
    }
    const byId = await client.request<MetadataResponse>(3, 12, { topics: [{ topicId, name: null }] });
    expect(byId.topics[0]!.errorCode).toBe(KafkaErrorCode.unknownTopicId);
  });

  it('closes on a version it does not serve whose response has no top-level error code: Fetch v3, OffsetFetch v0', async () => {
    for (const [apiKey, version, body] of [
      [1, 3, fetchBody('never-served', 0)],
      [9, 0, { groupId: 'old-group', topics: [{ name: 'never-served', partitionIndexes: [0] }] }],
    ] as const) {
      const old = await RawClient.open(server.port);
      old.send(apiKey, version, body);
      // An empty success instead would have an old client ask again at once, for ever.
      await old.closed;
    }
    await server.waitForLog((line) => line.reason === 'unsupported_version' && line.api === 'OffsetFetch');
  });

  it('closes on an unknown API key and on a garbled body, logging each', async () => {
    const unknown = await RawClient.open(server.port);
    const frame = Buffer.alloc(14);
    frame.writeInt32BE(10, 0);
    frame.writeInt16BE(9999, 4);
    frame.writeInt16BE(0, 6);
    frame.writeInt32BE(1, 8);
    frame.writeInt16BE(-1, 12);
    unknown.socket.write(frame);
    await unknown.closed;

    const garbled = await RawClient.open(server.port);
    const body = Buffer.alloc(4 + 10 + 3);
    body.writeInt32BE(13, 0);
    body.writeInt16BE(3, 4); // Metadata
    body.writeInt16BE(1, 6);
    body.writeInt32BE(2, 8);
    body.writeInt16BE(-1, 12);
    body.writeInt16BE(5, 14); // an array of 5 topics... in 1 byte
    garbled.socket.write(body);
    await garbled.closed;
    await server.waitForLog((line) => line.reason === 'unknown_api');
    await server.waitForLog((line) => line.reason === 'bad_request');
    expect((await client.request<MetadataResponse>(3, 12, { topics: [] })).brokers).toHaveLength(1);
  });
});
