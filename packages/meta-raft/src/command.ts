import { ErrorCode, RobustMQError } from '@robustmq/core';
import { ByteReader, ByteWriter } from './bytes.js';

/** Writes `value` under `key`; with `ifRevision`, only if the key's modRevision equals it (0: absent). */
export interface MetaPutOp {
  type: 'put';
  key: string;
  value: Uint8Array;
  ifRevision?: number;
}

/** Deletes `key`; with `ifRevision`, only if the key's modRevision equals it (0: absent). */
export interface MetaDeleteOp {
  type: 'delete';
  key: string;
  ifRevision?: number;
}

export type MetaOp = MetaPutOp | MetaDeleteOp;

/**
 * One change to the meta state machine: its ops are checked together and applied atomically at a
 * single revision. Commands are what the write-ahead log, and later the Raft log, carry.
 */
export interface MetaCommand {
  ops: MetaOp[];
}

/** The largest encoded command accepted, so one write cannot stall the log. */
export const MAX_COMMAND_BYTES = 16 * 1024 * 1024;

const FORMAT_VERSION = 1;
/** A Raft entry carrying several commands (see {@link encodeMetaCommandBatch}). */
const BATCH_VERSION = 2;
const OP_PUT = 1;
const OP_DELETE = 2;
const FLAG_IF_REVISION = 1;

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why `command` cannot be applied, or null when it can. Shared by encoding (so bad input is refused
 * before it is logged) and by the state machine (so a bad logged command has a deterministic result).
 */
export function invalidCommandReason(command: MetaCommand): string | null {
  if (!Array.isArray(command.ops)) return 'ops must be an array';
  const seen = new Set<string>();
  for (const op of command.ops) {
    if (op.type !== 'put' && op.type !== 'delete')
      return `unknown op type ${String((op as { type: unknown }).type)}`;
    const reason = invalidKeyReason(op.key);
    if (reason !== null) return reason;
    if (seen.has(op.key)) return `key ${op.key} appears twice in one command`;
    seen.add(op.key);
    if (op.ifRevision !== undefined && !(Number.isSafeInteger(op.ifRevision) && op.ifRevision >= 0)) {
      return `ifRevision must be a non-negative integer, got ${String(op.ifRevision)}`;
    }
    if (op.type === 'put' && !(op.value instanceof Uint8Array))
      return `value of ${op.key} must be a Uint8Array`;
  }
  return null;
}

/** Why `key` is not a valid meta key, or null. Lone surrogates are refused because they do not survive UTF-8. */
export function invalidKeyReason(key: unknown): string | null {
  if (typeof key !== 'string' || key.length === 0) return 'key must be a non-empty string';
  if (loneSurrogate.test(key)) return 'key must be well-formed Unicode';
  return null;
}

/**
 * Encodes `command` to bytes: a log entry. Throws `INVALID_ARGUMENT` for a malformed command and
 * `TOO_LARGE` above {@link MAX_COMMAND_BYTES}.
 */
export function encodeMetaCommand(command: MetaCommand): Uint8Array {
  const reason = invalidCommandReason(command);
  if (reason !== null) throw new RobustMQError(ErrorCode.InvalidArgument, reason);
  const writer = new ByteWriter();
  writer.u8(FORMAT_VERSION);
  writer.u32(command.ops.length);
  for (const op of command.ops) {
    writer.u8(op.type === 'put' ? OP_PUT : OP_DELETE);
    writer.u8(op.ifRevision === undefined ? 0 : FLAG_IF_REVISION);
    writer.string(op.key);
    if (op.ifRevision !== undefined) writer.u53(op.ifRevision);
    if (op.type === 'put') writer.bytes(op.value);
    if (writer.size > MAX_COMMAND_BYTES) {
      throw new RobustMQError(ErrorCode.TooLarge, `meta command above ${MAX_COMMAND_BYTES} bytes`);
    }
  }
  return writer.finish();
}

/** Decodes what {@link encodeMetaCommand} wrote; malformed bytes throw `CORRUPT`. Values are copies. */
export function decodeMetaCommand(bytes: Uint8Array): MetaCommand {
  const reader = new ByteReader(bytes, 'meta command');
  const version = reader.u8();
  if (version !== FORMAT_VERSION) reader.fail(`unknown format version ${version}`);
  const count = reader.u32();
  const ops: MetaOp[] = [];
  for (let i = 0; i < count; i++) {
    const kind = reader.u8();
    const flags = reader.u8();
    if ((flags & ~FLAG_IF_REVISION) !== 0) reader.fail(`unknown op flags ${flags}`);
    const key = reader.string();
    const ifRevision = (flags & FLAG_IF_REVISION) !== 0 ? reader.u53() : undefined;
    if (kind === OP_PUT) {
      const value = reader.bytes();
      ops.push(
        ifRevision === undefined ? { type: 'put', key, value } : { type: 'put', key, value, ifRevision },
      );
    } else if (kind === OP_DELETE) {
      ops.push(ifRevision === undefined ? { type: 'delete', key } : { type: 'delete', key, ifRevision });
    } else {
      reader.fail(`unknown op kind ${kind}`);
    }
  }
  reader.end();
  return { ops };
}

/**
 * Packs several encoded commands into one Raft entry, so a burst of writes costs one entry. Each
 * command is still applied on its own, in order, at its own revision. Throws `TOO_LARGE` above
 * {@link MAX_COMMAND_BYTES}.
 */
export function encodeMetaCommandBatch(commands: readonly Uint8Array[]): Uint8Array {
  let total = 5;
  for (const command of commands) total += 4 + command.length;
  if (total > MAX_COMMAND_BYTES) {
    throw new RobustMQError(ErrorCode.TooLarge, `meta command batch above ${MAX_COMMAND_BYTES} bytes`);
  }
  const writer = new ByteWriter(total);
  writer.u8(BATCH_VERSION);
  writer.u32(commands.length);
  for (const command of commands) writer.bytes(command);
  return writer.finish();
}

/** The commands in a Raft entry: one, as {@link encodeMetaCommand} wrote it, or a batch. */
export function decodeMetaEntry(bytes: Uint8Array): MetaCommand[] {
  if (bytes[0] !== BATCH_VERSION) return [decodeMetaCommand(bytes)];
  const reader = new ByteReader(bytes, 'meta command batch');
  reader.u8();
  const count = reader.u32();
  const commands: MetaCommand[] = [];
  for (let i = 0; i < count; i++) commands.push(decodeMetaCommand(reader.bytes()));
  reader.end();
  return commands;
}
