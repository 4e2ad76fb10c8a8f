/**
 * `@robustmq/protocol-kafka/codec`: the Kafka wire codec on its own (it imports nothing of
 * RobustMQ's). Generated message codecs for every schema and version, request and response frames,
 * and hand-written record batches (magic 2) with their compression codecs.
 */
export * from './messages/index.js';
export * from './frame.js';
export * from './protocol.js';
export * from './compression.js';
export * from './record-batch.js';
export * from './varint.js';
export * from './error-codes.js';
