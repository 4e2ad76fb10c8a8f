import {
  Compression,
  decodeRecordBatch,
  encodeRecordBatch,
  RecordBatchError,
} from '@robustmq/protocol-kafka/codec';
import {
  ErrorCode,
  RobustMQError,
  type Message,
  type RecordBatch,
  type RecordCodec,
  type RecordCompression,
  type StoredBatch,
  type StoredMessage,
} from '@robustmq/core';

const EMPTY = new Uint8Array(0);

/**
 * The node's shared record encoding: Kafka record batches (magic 2), from the Kafka codec, so a
 * record stored by any protocol is what a Kafka consumer fetches, and what a Kafka producer
 * stored (compressed or not) any protocol can read.
 */
export const kafkaRecordCodec: RecordCodec = {
  async encode(messages: readonly Message[], compression: RecordCompression = 'none'): Promise<RecordBatch> {
    if (messages.length === 0) {
      throw new RobustMQError(ErrorCode.InvalidArgument, 'a record batch needs at least one message');
    }
    let maxTimestamp = messages[0]!.timestamp;
    for (const message of messages) maxTimestamp = Math.max(maxTimestamp, message.timestamp);
    const data = await encodeRecordBatch({
      records: messages.map((message) => ({
        key: message.key,
        value: message.payload,
        headers: message.headers,
        timestamp: message.timestamp,
      })),
      // Our names for the codecs are Kafka's.
      compression: Compression[compression],
    });
    return { recordCount: messages.length, maxTimestamp, data };
  },

  decode(batch: StoredBatch, topic: string): Promise<StoredMessage[]> {
    let decoded;
    try {
      decoded = decodeRecordBatch(batch.data);
    } catch (error) {
      if (error instanceof RecordBatchError) {
        return Promise.reject(
          new RobustMQError(
            ErrorCode.Corrupt,
            `stored batch at offset ${batch.baseOffset}: ${error.message}`,
            {
              cause: error,
            },
          ),
        );
      }
      throw error;
    }
    // Control batches (transaction markers) hold no messages.
    if (decoded.control) return Promise.resolve([]);
    // The batch's own base offset may be stale (written before the store assigned one); the
    // storage offset is the truth, and record offsets are relative to it.
    return Promise.resolve(
      decoded.records.map((record) => ({
        topic,
        key: record.key,
        payload: record.value ?? EMPTY,
        headers: record.headers.map((header) => ({ key: header.key, value: header.value ?? EMPTY })),
        timestamp: record.timestamp,
        offset: batch.baseOffset + (record.offset - decoded.baseOffset),
      })),
    );
  },
};
