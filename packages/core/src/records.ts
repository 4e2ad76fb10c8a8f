/** A header on a message: Kafka record headers, MQTT v5 user properties, AMQP application properties. */
export interface MessageHeader {
  key: string;
  value: Uint8Array;
}

/**
 * One message in the unified namespace, as every protocol sees it once decoded. The payload bytes
 * are never altered between protocols.
 */
export interface Message {
  /** The topic in the unified namespace (an MQTT topic name, a Kafka topic, an AMQP address). */
  topic: string;
  /** Kafka record key; MQTT and AMQP messages carry none unless a binding supplies one. */
  key: Uint8Array | null;
  payload: Uint8Array;
  headers: readonly MessageHeader[];
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
}

/**
 * A batch of records as the storage layer keeps it: an opaque encoded block that occupies
 * `recordCount` consecutive offsets. Engines store and serve `data` byte for byte, which is what
 * lets a Kafka record batch be served exactly as it was produced.
 *
 * The common encoding of `data` across protocols is the Kafka record batch, magic 2 (DESIGN.md
 * section 3), so that any protocol can read what another wrote.
 */
export interface RecordBatch {
  /** Number of offsets the batch occupies; at least 1. */
  recordCount: number;
  /** Largest record timestamp in the batch, ms since the epoch: drives the time index and retention. */
  maxTimestamp: number;
  data: Uint8Array;
}

/** A batch read back from storage, with the offset of its first record. */
export interface StoredBatch extends RecordBatch {
  baseOffset: number;
}

/** A message read back from a shard, with its offset. */
export interface StoredMessage extends Message {
  offset: number;
}

/** The codecs a stored batch's records may be compressed with, by Kafka's names for them. */
export type RecordCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/**
 * The shared encoding of stored records (the Kafka record batch, magic 2), offered to every
 * protocol through its `BrokerContext`, so that MQTT and AMQP write what Kafka consumers read and
 * read what Kafka producers wrote (compressed or not).
 */
export interface RecordCodec {
  /**
   * Encodes messages of one shard into one batch, its records compressed with `compression`
   * (none by default); offsets are assigned on append.
   */
  encode(messages: readonly Message[], compression?: RecordCompression): Promise<RecordBatch>;
  /**
   * Decodes a stored batch (from `StorageEngine.read`) into its messages, decompressing as needed;
   * `topic` fills `Message.topic`, which the batch does not carry. `CORRUPT` for bytes that fail
   * their checksum or framing.
   */
  decode(batch: StoredBatch, topic: string): Promise<StoredMessage[]>;
}
