/**
 * What the journal server and its client say to each other over `@robustmq/rpc`: one RPC method per
 * StorageEngine call, named `journal.<call>`, with a MessagePack map as the body.
 *
 * Record batches travel as tuples rather than maps, so a small batch costs a few bytes of framing:
 * `[recordCount, maxTimestamp, data]` in an append, `[baseOffset, recordCount, maxTimestamp, data]`
 * in a read reply. `data` of 2 KiB or more crosses as an RPC attachment: written to the socket from
 * the caller's buffer and received as a view of the frame, never copied by the encoder.
 *
 * Bodies from the wire are untrusted. The server checks their shape here (INVALID_ARGUMENT when it
 * is wrong) and leaves the values to the engine, which checks them as it would for a local caller.
 */
import {
  ErrorCode,
  RobustMQError,
  type AppendResult,
  type ReadResult,
  type RecordBatch,
  type ShardConfig,
  type ShardInfo,
  type StoredBatch,
} from '@robustmq/core';

export const Method = {
  createShard: 'journal.createShard',
  deleteShard: 'journal.deleteShard',
  listShards: 'journal.listShards',
  shardInfo: 'journal.shardInfo',
  updateShardConfig: 'journal.updateShardConfig',
  append: 'journal.append',
  read: 'journal.read',
  waitForData: 'journal.waitForData',
  offsetForTimestamp: 'journal.offsetForTimestamp',
  deleteBefore: 'journal.deleteBefore',
  enforceRetention: 'journal.enforceRetention',
} as const;

export type WireBatch = [recordCount: number, maxTimestamp: number, data: Uint8Array];
export type WireStoredBatch = [
  baseOffset: number,
  recordCount: number,
  maxTimestamp: number,
  data: Uint8Array,
];

export interface ShardRequest {
  shard: string;
}

export interface ConfigRequest extends ShardRequest {
  config?: Partial<ShardConfig>;
}

export interface AppendRequest extends ShardRequest {
  batches: WireBatch[];
  /** The sender's leader epoch for the shard; omitted by senders that do not track placement. */
  epoch?: number;
  /**
   * Makes the append conditional (`AppendOptions.expectedOffset`). Journal nodes from before it
   * ignore it and store the batches wherever they land: the client checks the reply's offset.
   */
  expectedOffset?: number;
}

export interface ReadRequest extends ShardRequest {
  offset: number;
  maxBytes: number;
}

export interface WaitRequest extends ShardRequest {
  offset: number;
  timeoutMs: number;
}

export interface TimestampRequest extends ShardRequest {
  timestamp: number;
}

export interface DeleteBeforeRequest extends ShardRequest {
  offset: number;
  epoch?: number;
}

export interface RetentionRequest {
  now: number;
}

/** `logStartOffset` is missing from the replies of journal nodes from before it was reported. */
export type AppendReply = Omit<AppendResult, 'logStartOffset'> &
  Partial<Pick<AppendResult, 'logStartOffset'>>;

export interface ReadReply {
  batches: WireStoredBatch[];
  logStartOffset: number;
  nextOffset: number;
}

function invalid(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.InvalidArgument, message);
}

function malformedReply(method: string): RobustMQError {
  return new RobustMQError(ErrorCode.Internal, `the journal server sent a malformed reply to ${method}`);
}

/** The request body as a map (none counts as an empty one); anything else is INVALID_ARGUMENT. */
export function requestFields(body: unknown, method: string): Record<string, unknown> {
  if (body === undefined) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body) || body instanceof Uint8Array) {
    throw invalid(`${method}: the request body must be a map`);
  }
  return body as Record<string, unknown>;
}

/** An optional field that holds a count or offset: absent (or null), or a non-negative safe integer. */
function optionalOffset(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isOffset(value)) {
    const shown = typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? typeof value);
    throw invalid(`${name} must be a non-negative integer, got ${shown}`);
  }
  return value;
}

/** An optional epoch field: absent, or a non-negative safe integer. */
export function epochField(fields: Record<string, unknown>): number | undefined {
  return optionalOffset(fields.epoch, 'epoch');
}

/** An append's optional expectedOffset field: absent, or a non-negative safe integer. */
export function expectedOffsetField(fields: Record<string, unknown>): number | undefined {
  return optionalOffset(fields.expectedOffset, 'expectedOffset');
}

export function encodeBatches(batches: readonly RecordBatch[]): WireBatch[] {
  if (!Array.isArray(batches)) throw invalid('batches must be an array');
  return batches.map((batch: RecordBatch | null | undefined) => {
    if (batch === null || typeof batch !== 'object') throw invalid('each batch must be an object');
    return [batch.recordCount, batch.maxTimestamp, batch.data];
  });
}

/** The batches of an append request, checked for shape only. */
export function decodeBatches(value: unknown): RecordBatch[] {
  if (!Array.isArray(value)) throw invalid('batches must be an array');
  return value.map((tuple: unknown, i) => {
    if (!Array.isArray(tuple) || tuple.length !== 3 || !(tuple[2] instanceof Uint8Array)) {
      throw invalid(`batch ${i} must be [recordCount, maxTimestamp, data bytes]`);
    }
    return { recordCount: tuple[0] as number, maxTimestamp: tuple[1] as number, data: tuple[2] };
  });
}

/** Bytes a stored batch adds to a read reply beyond its data: a tuple of three numbers. */
export const STORED_BATCH_OVERHEAD_BYTES = 40;

export function encodeReadReply(result: ReadResult): ReadReply {
  return {
    batches: result.batches.map((b) => [b.baseOffset, b.recordCount, b.maxTimestamp, b.data]),
    logStartOffset: result.logStartOffset,
    nextOffset: result.nextOffset,
  };
}

/** An offset or count from a reply: a non-negative safe integer. */
function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return (
    value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)
  );
}

/*
 * Replies are checked as closely as requests: a reply the client hands on is what a broker serves
 * and commits offsets from, so one that is not what the contract promises fails the call INTERNAL.
 */

export function decodeReadReply(reply: unknown): ReadResult {
  if (!isMap(reply) || !Array.isArray(reply.batches)) throw malformedReply(Method.read);
  const { logStartOffset, nextOffset } = reply;
  if (!isOffset(logStartOffset) || !isOffset(nextOffset) || nextOffset < logStartOffset) {
    throw malformedReply(Method.read);
  }
  const batches: StoredBatch[] = reply.batches.map((tuple: unknown) => {
    if (!Array.isArray(tuple) || tuple.length !== 4) throw malformedReply(Method.read);
    const [baseOffset, recordCount, maxTimestamp, data] = tuple as unknown[];
    if (
      !isOffset(baseOffset) ||
      !isOffset(recordCount) ||
      recordCount < 1 ||
      typeof maxTimestamp !== 'number' ||
      !Number.isFinite(maxTimestamp) ||
      !(data instanceof Uint8Array)
    ) {
      throw malformedReply(Method.read);
    }
    return { baseOffset, recordCount, maxTimestamp, data };
  });
  return { batches, logStartOffset, nextOffset };
}

export function encodeAppendReply(result: AppendResult): AppendReply {
  return {
    baseOffset: result.baseOffset,
    lastOffset: result.lastOffset,
    logStartOffset: result.logStartOffset,
  };
}

/**
 * An append reply. No relation between the log start and the offsets is checked: a deleteBefore
 * that ran alongside may have moved the log start past them.
 */
export function decodeAppendReply(reply: unknown): AppendReply {
  if (!isMap(reply)) throw malformedReply(Method.append);
  const { baseOffset, lastOffset, logStartOffset } = reply;
  if (!isOffset(baseOffset) || !isOffset(lastOffset) || lastOffset < baseOffset) {
    throw malformedReply(Method.append);
  }
  // A journal node from before the log start was reported leaves it out.
  if (logStartOffset === undefined) return { baseOffset, lastOffset };
  if (!isOffset(logStartOffset)) throw malformedReply(Method.append);
  return { baseOffset, lastOffset, logStartOffset };
}

/** A ShardInfo reply (createShard, shardInfo, updateShardConfig). */
export function decodeShardInfoReply(reply: unknown, method: string): ShardInfo {
  if (!isMap(reply)) throw malformedReply(method);
  const { name, config, logStartOffset, nextOffset, sizeBytes } = reply;
  if (
    typeof name !== 'string' ||
    !isMap(config) ||
    !isOffset(logStartOffset) ||
    !isOffset(nextOffset) ||
    !isOffset(sizeBytes) ||
    nextOffset < logStartOffset
  ) {
    throw malformedReply(method);
  }
  // A journal node from before segmentMs leaves it out: it rolls by size only.
  const full = { segmentMs: null, ...config } as unknown as ShardConfig;
  return { name, config: full, logStartOffset, nextOffset, sizeBytes };
}

export function decodeListShardsReply(reply: unknown): string[] {
  if (!Array.isArray(reply) || !reply.every((name) => typeof name === 'string')) {
    throw malformedReply(Method.listShards);
  }
  return reply;
}

export function decodeOffsetForTimestampReply(reply: unknown): number | null {
  if (reply !== null && !isOffset(reply)) throw malformedReply(Method.offsetForTimestamp);
  return reply;
}

export function decodeDeleteBeforeReply(reply: unknown): number {
  if (!isOffset(reply)) throw malformedReply(Method.deleteBefore);
  return reply;
}
