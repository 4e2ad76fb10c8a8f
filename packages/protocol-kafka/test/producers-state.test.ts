import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, TopicCatalog, type MetaStore } from '@robustmq/core';
import { openLocalMetaStore } from '@robustmq/meta-raft';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import type { ProducedBatch, ProducerCheckResult } from '../src/broker/handler.js';
import { KafkaErrorCode as E } from '../src/codec/error-codes.js';
import { encodeRecordBatch } from '../src/codec/record-batch.js';
import { ProducerIdAllocator } from '../src/producers/producer-ids.js';
import { ProducerService } from '../src/producers/producer-service.js';
import { ProducerStateTable } from '../src/producers/producer-state.js';

describe('idempotent producers', () => {
  let dir: string;
  let meta: MetaStore;
  let storage: MemoryStorageEngine;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kafka-producers-'));
    meta = await openLocalMetaStore({ dir });
    storage = new MemoryStorageEngine();
    await storage.createShard('t/0');
  });

  afterEach(async () => {
    await meta.close();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * What Produce does with one batch: check, append where the state was read up to when told to,
   * check again if something was stored there first, record the offset.
   */
  async function produce(
    table: ProducerStateTable,
    producerId: bigint,
    producerEpoch: number,
    baseSequence: number,
    count: number,
    topic = 't',
    label = 'v',
  ): Promise<{ kind: 'append'; offset: number } | Exclude<ProducerCheckResult, { kind: 'append' }>> {
    const data = await encodeRecordBatch({
      records: Array.from({ length: count }, (_, i) => ({
        value: `${label}${baseSequence + i}`,
        timestamp: 1000,
      })),
      producerId,
      producerEpoch,
      baseSequence,
    });
    const batch: ProducedBatch = {
      topic,
      partition: 0,
      producerId,
      producerEpoch,
      baseSequence,
      lastOffsetDelta: count - 1,
      transactional: false,
      maxTimestamp: 1000,
      data,
    };
    for (;;) {
      const result = await table.check(batch);
      if (result.kind !== 'append') return result;
      try {
        const { baseOffset } = await storage.append(
          `${topic}/0`,
          [{ recordCount: count, maxTimestamp: 1000, data }],
          {
            expectedOffset: result.expectedOffset,
          },
        );
        await table.appended(batch, baseOffset);
        return { kind: 'append', offset: baseOffset };
      } catch (error) {
        if (!isRobustMQError(error, ErrorCode.Conflict)) throw error;
        table.behind(batch);
      }
    }
  }

  it('appends batches in sequence and answers a retry with the original offset', async () => {
    const table = new ProducerStateTable(storage);
    expect(await produce(table, 7n, 0, 0, 3)).toEqual({ kind: 'append', offset: 0 });
    expect(await produce(table, 7n, 0, 3, 2)).toEqual({ kind: 'append', offset: 3 });
    expect(await produce(table, 7n, 0, 0, 3)).toEqual({
      kind: 'duplicate',
      baseOffset: 0,
      maxTimestamp: 1000,
    });
    expect(await produce(table, 7n, 0, 3, 2)).toEqual({
      kind: 'duplicate',
      baseOffset: 3,
      maxTimestamp: 1000,
    });
    expect((await storage.shardInfo('t/0')).nextOffset).toBe(5);
  });

  it('refuses a gap in the sequence and a batch from an older epoch', async () => {
    const table = new ProducerStateTable(storage);
    await produce(table, 7n, 1, 0, 2);
    expect(await produce(table, 7n, 1, 5, 1)).toEqual({
      kind: 'error',
      errorCode: E.outOfOrderSequenceNumber,
    });
    expect(await produce(table, 7n, 0, 2, 1)).toEqual({ kind: 'error', errorCode: E.invalidProducerEpoch });
    // A new epoch starts over at sequence 0 and nowhere else.
    expect(await produce(table, 7n, 2, 9, 1)).toEqual({
      kind: 'error',
      errorCode: E.outOfOrderSequenceNumber,
    });
    expect((await produce(table, 7n, 2, 0, 1)).kind).toBe('append');
    expect(await produce(table, 7n, 1, 2, 1)).toEqual({ kind: 'error', errorCode: E.invalidProducerEpoch });
  });

  it('remembers the last five batches per producer, and producers apart from each other', async () => {
    const table = new ProducerStateTable(storage);
    for (let i = 0; i < 6; i++) await produce(table, 1n, 0, i, 1);
    await produce(table, 2n, 0, 0, 1);
    expect(await produce(table, 1n, 0, 1, 1)).toEqual({
      kind: 'duplicate',
      baseOffset: 1,
      maxTimestamp: 1000,
    });
    expect(await produce(table, 1n, 0, 0, 1)).toEqual({
      kind: 'error',
      errorCode: E.outOfOrderSequenceNumber,
    });
    expect(await produce(table, 2n, 0, 0, 1)).toEqual({
      kind: 'duplicate',
      baseOffset: 6,
      maxTimestamp: 1000,
    });
    expect((await produce(table, 2n, 0, 1, 1)).kind).toBe('append');
  });

  it('accepts the first batch of a producer it has not seen, whatever its sequence', async () => {
    const table = new ProducerStateTable(storage);
    expect((await produce(table, 9n, 3, 42, 2)).kind).toBe('append');
    expect((await produce(table, 9n, 3, 44, 1)).kind).toBe('append');
  });

  it('wraps sequences from 2^31-1 to 0', async () => {
    const table = new ProducerStateTable(storage);
    const max = 2 ** 31 - 1;
    await produce(table, 5n, 0, max - 1, 2);
    expect((await produce(table, 5n, 0, 0, 1)).kind).toBe('append');
    expect(await produce(table, 5n, 0, max - 1, 2)).toEqual({
      kind: 'duplicate',
      baseOffset: 0,
      maxTimestamp: 1000,
    });
  });

  it('rebuilds state from the stored log, so a retry after a restart is still a duplicate', async () => {
    const before = new ProducerStateTable(storage);
    await produce(before, 11n, 0, 0, 4);
    await produce(before, 11n, 0, 4, 4);
    await storage.append('t/0', [
      { recordCount: 1, maxTimestamp: 1, data: await encodeRecordBatch({ records: [{ value: 'plain' }] }) },
    ]);
    const after = new ProducerStateTable(storage);
    expect(await produce(after, 11n, 0, 4, 4)).toEqual({
      kind: 'duplicate',
      baseOffset: 4,
      maxTimestamp: 1000,
    });
    expect(await produce(after, 11n, 0, 12, 1)).toEqual({
      kind: 'error',
      errorCode: E.outOfOrderSequenceNumber,
    });
    expect(await produce(after, 11n, 0, 8, 1)).toEqual({ kind: 'append', offset: 9 });
  });

  it('answers the retry of a batch stored without an answer as a duplicate', async () => {
    const table = new ProducerStateTable(storage);
    await produce(table, 13n, 0, 0, 2);
    // The storage kept the batch but its answer was lost (a journal node killed meanwhile).
    const data = await encodeRecordBatch({
      records: [
        { value: 'v2', timestamp: 1000 },
        { value: 'v3', timestamp: 1000 },
      ],
      producerId: 13n,
      producerEpoch: 0,
      baseSequence: 2,
    });
    const lost: ProducedBatch = {
      topic: 't',
      partition: 0,
      producerId: 13n,
      producerEpoch: 0,
      baseSequence: 2,
      lastOffsetDelta: 1,
      transactional: false,
      maxTimestamp: 1000,
      data,
    };
    expect((await table.check(lost)).kind).toBe('append');
    await storage.append('t/0', [{ recordCount: 2, maxTimestamp: 1000, data }]);
    table.appendFailed(lost);
    expect(await produce(table, 13n, 0, 2, 2)).toEqual({
      kind: 'duplicate',
      baseOffset: 2,
      maxTimestamp: 1000,
    });
    expect((await storage.shardInfo('t/0')).nextOffset).toBe(4);
  });

  it('answers as a duplicate a retry that another broker stored since this one read the log', async () => {
    const first = new ProducerStateTable(storage);
    const second = new ProducerStateTable(storage);
    expect(await produce(first, 15n, 0, 0, 2)).toEqual({ kind: 'append', offset: 0 });
    // Leadership moved: the batch went to the other broker, whose answer the producer lost.
    expect(await produce(second, 15n, 0, 2, 2)).toEqual({ kind: 'append', offset: 2 });
    // Back on the first broker, whose state predates that batch, the retry is found in the log.
    expect(await produce(first, 15n, 0, 2, 2)).toEqual({
      kind: 'duplicate',
      baseOffset: 2,
      maxTimestamp: 1000,
    });
    expect(await produce(first, 15n, 0, 4, 1)).toEqual({ kind: 'append', offset: 4 });
    expect((await storage.shardInfo('t/0')).nextOffset).toBe(5);
  });

  it('refuses a batch out of sequence only after reading what other brokers stored', async () => {
    const first = new ProducerStateTable(storage);
    const second = new ProducerStateTable(storage);
    await produce(first, 16n, 0, 0, 2);
    await produce(second, 16n, 0, 2, 2);
    // The first broker last saw sequence 1: the batch from 4 on follows what the second stored.
    expect(await produce(first, 16n, 0, 4, 1)).toEqual({ kind: 'append', offset: 4 });
    expect(await produce(first, 16n, 0, 9, 1)).toEqual({
      kind: 'error',
      errorCode: E.outOfOrderSequenceNumber,
    });
  });

  it('stores the next records a producer sends under the sequence numbers of its last batch', async () => {
    const table = new ProducerStateTable(storage);
    await produce(table, 18n, 0, 0, 2);
    await produce(table, 18n, 0, 2, 2);
    // A retry: the same records, though a client may stamp them anew.
    expect(await produce(table, 18n, 0, 2, 2)).toEqual({
      kind: 'duplicate',
      baseOffset: 2,
      maxTimestamp: 1000,
    });
    // A client that gave up on the batch sends other records under its numbers.
    expect(await produce(table, 18n, 0, 2, 2, 't', 'next-')).toEqual({ kind: 'append', offset: 4 });
    expect(await produce(table, 18n, 0, 2, 2, 't', 'next-')).toEqual({
      kind: 'duplicate',
      baseOffset: 4,
      maxTimestamp: 1000,
    });
    expect(await produce(table, 18n, 0, 4, 1)).toEqual({ kind: 'append', offset: 6 });
    // Only the last batch is taken over so: an older one's numbers are a retry, as in Kafka.
    expect(await produce(table, 18n, 0, 0, 2, 't', 'other-')).toEqual({
      kind: 'duplicate',
      baseOffset: 0,
      maxTimestamp: 1000,
    });
    // A broker reading the log afresh sees the batch that took the numbers over.
    expect(await produce(new ProducerStateTable(storage), 18n, 0, 2, 2, 't', 'next-')).toEqual({
      kind: 'duplicate',
      baseOffset: 4,
      maxTimestamp: 1000,
    });
  });

  it('stores a batch that starts where the last one did with other records and another count', async () => {
    const table = new ProducerStateTable(storage);
    await produce(table, 19n, 0, 0, 2);
    await produce(table, 19n, 0, 2, 2);
    expect(await produce(table, 19n, 0, 2, 3, 't', 'next-')).toEqual({ kind: 'append', offset: 4 });
    expect(await produce(table, 19n, 0, 2, 3, 't', 'next-')).toEqual({
      kind: 'duplicate',
      baseOffset: 4,
      maxTimestamp: 1000,
    });
    expect(await produce(table, 19n, 0, 5, 1)).toEqual({ kind: 'append', offset: 7 });
    // Not so for the numbers of an older batch, nor a batch that starts inside the last one.
    expect((await produce(table, 19n, 0, 0, 3, 't', 'old-')).kind).toBe('error');
    expect((await produce(table, 19n, 0, 3, 2, 't', 'inside-')).kind).toBe('error');
  });

  it('reads the tail of a log of large records when it rebuilds, whatever was stored before', async () => {
    const large = await encodeRecordBatch({ records: [{ value: Buffer.alloc(1024 * 1024, 1) }] });
    for (let i = 0; i < 80; i++) {
      await storage.append('t/0', [{ recordCount: 1, maxTimestamp: 1, data: large }]);
    }
    await produce(new ProducerStateTable(storage), 17n, 0, 0, 3);
    expect(await produce(new ProducerStateTable(storage), 17n, 0, 0, 3)).toEqual({
      kind: 'duplicate',
      baseOffset: 80,
      maxTimestamp: 1000,
    });
  });

  it("forgets a deleted topic's producers, however it was deleted, so the topic made again starts empty", async () => {
    const catalog = new TopicCatalog(meta, storage);
    const topic = {
      name: 'again',
      partitions: 1,
      storageClass: 'memory' as const,
      retentionMs: null,
      retentionBytes: null,
      configs: {},
    };
    await catalog.create(topic);
    const service = new ProducerService(meta, storage);
    try {
      expect(await produce(service.state, 21n, 0, 0, 3, 'again')).toEqual({ kind: 'append', offset: 0 });
      expect(await produce(service.state, 21n, 0, 3, 2, 'again')).toEqual({ kind: 'append', offset: 3 });
      // Deleted through the catalog, as the admin API and other brokers do.
      await catalog.delete('again');
      await catalog.create(topic);
      // The retry of a batch stored in the deleted topic is stored in the new one, not taken for a
      // duplicate; a producer that starts the partition's sequence over is not out of order.
      expect(await produce(service.state, 21n, 0, 3, 2, 'again')).toEqual({ kind: 'append', offset: 0 });
      await catalog.delete('again');
      await catalog.create(topic);
      expect(await produce(service.state, 21n, 0, 0, 1, 'again')).toEqual({ kind: 'append', offset: 0 });
    } finally {
      service.stop();
    }
  });

  it('allocates unique producer ids in blocks that survive restarts and concurrent brokers', async () => {
    const a = new ProducerIdAllocator(meta, 10);
    const b = new ProducerIdAllocator(meta, 10);
    const ids = await Promise.all([
      ...Array.from({ length: 25 }, () => a.allocate()),
      ...Array.from({ length: 25 }, () => b.allocate()),
    ]);
    expect(new Set(ids).size).toBe(50);
    const reopened = new ProducerIdAllocator(meta, 10);
    const next = await reopened.allocate();
    expect(next).toBeGreaterThan(Math.max(...ids));
  });

  it('gives idempotent producers fresh ids and refuses transactional ids', async () => {
    const service = new ProducerService(meta, storage);
    const one = await service.initProducerId({ transactionalId: null });
    const two = await service.initProducerId({ transactionalId: '' });
    expect(one).toMatchObject({ errorCode: E.none, producerEpoch: 0 });
    expect(two).toMatchObject({ errorCode: E.none, producerEpoch: 0 });
    expect(two.producerId).not.toBe(one.producerId);
    expect(await service.initProducerId({ transactionalId: 'tx-1' })).toEqual({
      errorCode: E.transactionalIdAuthorizationFailed,
      producerId: -1n,
      producerEpoch: -1,
    });
  });
});
