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
  // Most commands hold one op: no set needed to find a repeated key.
  const seen = command.ops.length > 1 ? new Set<string>() : null;
  for (const op of command.ops) {
    if (op.type !== 'put' && op.type !== 'delete')
      return `unknown op type ${String((op as { type: unknown }).type)}`;
    const reason = invalidKeyReason(op.key);
    if (reason !== null) return reason;
    if (seen !== null) {
      if (seen.has(op.key)) return `key ${op.key} appears twice in one command`;
      seen.add(op.key);
    }
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
  const command = readCommand(reader);
  reader.end();
  return command;
}

function readCommand(reader: ByteReader): MetaCommand {
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
  return { ops };
}

/**
 * Checks `command` as {@link encodeMetaCommand} does (throwing `INVALID_ARGUMENT` or `TOO_LARGE`)
 * and returns the size of its encoding, without encoding it.
 */
export function checkMetaCommand(command: MetaCommand): number {
  const reason = invalidCommandReason(command);
  if (reason !== null) throw new RobustMQError(ErrorCode.InvalidArgument, reason);
  let size = 5;
  for (const op of command.ops) {
    size += 6 + Buffer.byteLength(op.key, 'utf8');
    if (op.ifRevision !== undefined) size += 8;
    if (op.type === 'put') size += 4 + op.value.length;
  }
  if (size > MAX_COMMAND_BYTES) {
    throw new RobustMQError(ErrorCode.TooLarge, `meta command above ${MAX_COMMAND_BYTES} bytes`);
  }
  return size;
}

/** One Raft entry's bytes and the commands it carries, their values views of those bytes. */
export interface EncodedMetaEntry {
  data: Uint8Array;
  commands: MetaCommand[];
}

/**
 * Encodes checked commands as one Raft entry, in one pass and one buffer: a lone command as
 * {@link encodeMetaCommand} writes it, several as {@link encodeMetaCommandBatch} packs them.
 * `sizes` are what {@link checkMetaCommand} returned for each. Also returns the commands as
 * {@link decodeMetaEntry} would give them back, their values views of `data`, so whoever proposed
 * them can apply them without decoding the entry (and without holding the caller's arrays).
 */
export function encodeMetaEntry(
  commands: readonly MetaCommand[],
  sizes: readonly number[],
): EncodedMetaEntry {
  const batch = commands.length !== 1;
  let total = batch ? 5 : 0;
  for (const size of sizes) total += batch ? 4 + size : size;
  if (total > MAX_COMMAND_BYTES) {
    throw new RobustMQError(ErrorCode.TooLarge, `meta command batch above ${MAX_COMMAND_BYTES} bytes`);
  }
  const data = new Uint8Array(total);
  const out = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  if (batch) {
    out[0] = BATCH_VERSION;
    out.writeUInt32BE(commands.length, 1);
    at = 5;
  }
  const placed: MetaCommand[] = [];
  for (let i = 0; i < commands.length; i++) {
    const { ops } = commands[i]!;
    if (batch) {
      out.writeUInt32BE(sizes[i]!, at);
      at += 4;
    }
    out[at] = FORMAT_VERSION;
    out.writeUInt32BE(ops.length, at + 1);
    at += 5;
    const copies: MetaOp[] = [];
    for (const op of ops) {
      out[at] = op.type === 'put' ? OP_PUT : OP_DELETE;
      out[at + 1] = op.ifRevision === undefined ? 0 : FLAG_IF_REVISION;
      const keyBytes = out.write(op.key, at + 6, 'utf8');
      out.writeUInt32BE(keyBytes, at + 2);
      at += 6 + keyBytes;
      if (op.ifRevision !== undefined) {
        out.writeUInt32BE(Math.floor(op.ifRevision / 2 ** 32), at);
        out.writeUInt32BE(op.ifRevision % 2 ** 32, at + 4);
        at += 8;
      }
      if (op.type === 'put') {
        out.writeUInt32BE(op.value.length, at);
        at += 4;
        data.set(op.value, at);
        const value = data.subarray(at, at + op.value.length);
        at += op.value.length;
        copies.push(
          op.ifRevision === undefined
            ? { type: 'put', key: op.key, value }
            : { type: 'put', key: op.key, value, ifRevision: op.ifRevision },
        );
      } else {
        copies.push(
          op.ifRevision === undefined
            ? { type: 'delete', key: op.key }
            : { type: 'delete', key: op.key, ifRevision: op.ifRevision },
        );
      }
    }
    placed.push({ ops: copies });
  }
  if (at !== total) {
    throw new RobustMQError(ErrorCode.Internal, `meta entry of ${total} bytes got ${at}: sizes do not match`);
  }
  return { data, commands: placed };
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

/**
 * The commands in a Raft entry: one, as {@link encodeMetaCommand} wrote it, or a batch. The entry
 * is copied once and the values are views of that copy (so they share one allocation, and stay
 * as they are whatever happens to `bytes`).
 */
export function decodeMetaEntry(bytes: Uint8Array): MetaCommand[] {
  const own = new Uint8Array(bytes);
  if (own[0] !== BATCH_VERSION) {
    const reader = new ByteReader(own, 'meta command', true);
    const command = readCommand(reader);
    reader.end();
    return [command];
  }
  const reader = new ByteReader(own, 'meta command batch', true);
  reader.u8();
  const count = reader.u32();
  const commands: MetaCommand[] = [];
  for (let i = 0; i < count; i++) {
    const inner = reader.sub(reader.u32(), 'meta command');
    commands.push(readCommand(inner));
    inner.end();
  }
  reader.end();
  return commands;
}
