import type { Logger, Message, MessageHeader, Router } from '@robustmq/core';
import { Compression } from '../codec/compression.js';
import {
  decodeRecordBatch,
  readBatchHeader,
  RECORD_BATCH_HEADER_SIZE,
  type KafkaRecord,
} from '../codec/record-batch.js';

const EMPTY = Buffer.alloc(0);
const ORIGIN = { protocol: 'kafka' } as const;

/** The records of one stored batch, decoded once, on first need. */
class LazyBatch {
  private decoded: KafkaRecord[] | null = null;

  constructor(private readonly batch: Buffer) {}

  /** Every record of the batch. */
  records(): KafkaRecord[] {
    // The batch passed its CRC check before it was stored.
    this.decoded ??= decodeRecordBatch(this.batch, { verifyCrc: false }).records;
    return this.decoded;
  }

  record(index: number): KafkaRecord {
    const record = this.records()[index];
    if (record === undefined) throw new RangeError(`record ${index} is not in the batch`);
    return record;
  }
}

/**
 * Records the header's count may claim before the batch is decoded to check it: every record takes
 * at least 7 bytes once decompressed, and a compressed batch claiming more records than it has
 * bytes is decoded first, so a lying header cannot make the feed loop far past the batch's size.
 */
function plausibleRecords(batch: Buffer, compressed: boolean): number {
  const bytes = batch.length - RECORD_BATCH_HEADER_SIZE;
  return compressed ? bytes : Math.floor(bytes / 7);
}

/**
 * A stored record as the router carries it. Only `topic` is known up front: the key, value,
 * headers and timestamp are decoded when a subscriber first reads them, so records nobody on the
 * node wants (the usual case for a busy Kafka topic) are never decoded.
 */
class RoutedRecord implements Message {
  constructor(
    readonly topic: string,
    private readonly batch: LazyBatch,
    private readonly index: number,
  ) {}

  get key(): Uint8Array | null {
    return this.batch.record(this.index).key;
  }

  get payload(): Uint8Array {
    return this.batch.record(this.index).value ?? EMPTY;
  }

  get headers(): readonly MessageHeader[] {
    return this.batch
      .record(this.index)
      .headers.map((header) => ({ key: header.key, value: header.value ?? EMPTY }));
  }

  get timestamp(): number {
    return this.batch.record(this.index).timestamp;
  }
}

/**
 * Publishes the records of a batch Kafka producers stored on the node's router (origin `kafka`),
 * so MQTT subscribers get them (docs/cross-protocol.md). Called once the batch is durable, in
 * offset order per partition. Transactional batches are left out: live delivery cannot wait for
 * the commit, and an aborted record must not reach anyone.
 */
export function publishStoredBatch(router: Router, topic: string, batch: Buffer, logger: Logger): void {
  const header = readBatchHeader(batch);
  if (header.control || header.transactional) return;
  const lazy = new LazyBatch(batch);
  try {
    // Decoding fails unless the batch holds exactly the records its header counts.
    if (header.recordCount > plausibleRecords(batch, header.compression !== Compression.none)) lazy.records();
    for (let index = 0; index < header.recordCount; index++) {
      const receivers = router.publish(new RoutedRecord(topic, lazy, index), ORIGIN);
      // Nobody took the first record, so no handler ran and the subscriptions are as they were:
      // the other records of the batch (same topic) would find nobody either.
      if (receivers === 0 && index === 0) return;
    }
  } catch (error) {
    logger.error({ err: error, topic }, 'stored Kafka records not published on the router');
  }
}
