/**
 * The primitives every generated message codec reads and writes: fixed-width integers, strings,
 * bytes and arrays in their classic (int16/int32 length) and compact (unsigned varint length + 1)
 * forms, UUIDs and tagged fields.
 */
import { readUnsignedVarint, unsignedVarintSize, writeUnsignedVarint } from './varint.js';

/** A tagged field the codec does not know, kept as raw bytes so it is written back unchanged. */
export interface TaggedField {
  tag: number;
  data: Buffer;
}

/** A known tagged field about to be written: its tag, encoded size and writer. */
export interface TaggedWrite {
  tag: number;
  size: number;
  write(writer: Writer): void;
}

/** Malformed or truncated message bytes. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * A `records` field as written: one buffer, or pieces written one after another as if joined (a
 * Fetch response sends a partition's stored batches this way, without copying them together).
 * Decoding always gives one Buffer.
 */
export type Records = Buffer | readonly Uint8Array[];

function isPieces(value: Records): value is readonly Uint8Array[] {
  return Array.isArray(value);
}

function piecesLength(pieces: readonly Uint8Array[]): number {
  let length = 0;
  for (const piece of pieces) length += piece.length;
  return length;
}

export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMPTY = Buffer.alloc(0);
/** Byte fields from this size on are referenced, not copied, by a sharing Writer. */
const SHARE_BYTES = 32 * 1024;

/** Reads message fields from a buffer, front to back. */
export class Reader {
  offset: number;

  constructor(
    readonly buf: Buffer,
    offset = 0,
  ) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(bytes: number): number {
    const at = this.offset;
    if (bytes < 0 || at + bytes > this.buf.length) {
      throw new ProtocolError(
        `message truncated: need ${bytes} bytes at ${at}, have ${this.buf.length - at}`,
      );
    }
    this.offset = at + bytes;
    return at;
  }

  readInt8(): number {
    return this.buf.readInt8(this.need(1));
  }
  readInt16(): number {
    return this.buf.readInt16BE(this.need(2));
  }
  readUint16(): number {
    return this.buf.readUInt16BE(this.need(2));
  }
  readInt32(): number {
    return this.buf.readInt32BE(this.need(4));
  }
  readUint32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }
  readInt64(): bigint {
    return this.buf.readBigInt64BE(this.need(8));
  }
  readFloat64(): number {
    return this.buf.readDoubleBE(this.need(8));
  }
  readBool(): boolean {
    return this.buf[this.need(1)] !== 0;
  }
  readUnsignedVarint(): number {
    const [value, next] = readUnsignedVarint(this.buf, this.offset);
    this.offset = next;
    return value;
  }
  readUuid(): string {
    const at = this.need(16);
    const hex = this.buf.toString('hex', at, at + 16);
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** A length: int16 for classic strings, int32 for classic bytes/arrays, varint - 1 if compact. -1 is null. */
  private length(compact: boolean, wide: boolean): number {
    if (compact) return this.readUnsignedVarint() - 1;
    return wide ? this.readInt32() : this.readInt16();
  }

  readNullableString(compact: boolean): string | null {
    const length = this.length(compact, false);
    if (length < 0) return null;
    const at = this.need(length);
    return this.buf.toString('utf8', at, at + length);
  }
  readString(compact: boolean): string {
    const value = this.readNullableString(compact);
    if (value === null) throw new ProtocolError('null in a non-nullable string');
    return value;
  }
  readNullableBytes(compact: boolean): Buffer | null {
    const length = this.length(compact, true);
    if (length < 0) return null;
    const at = this.need(length);
    return this.buf.subarray(at, at + length);
  }
  readBytes(compact: boolean): Buffer {
    const value = this.readNullableBytes(compact);
    if (value === null) throw new ProtocolError('null in non-nullable bytes');
    return value;
  }
  /** An array's element count, -1 for null. Bounded by the bytes left, so garbage cannot allocate. */
  readArrayLength(compact: boolean): number {
    const length = this.length(compact, true);
    if (length > this.remaining) throw new ProtocolError(`array of ${length} elements exceeds the message`);
    return length;
  }
  readRaw(bytes: number): Buffer {
    const at = this.need(bytes);
    return this.buf.subarray(at, at + bytes);
  }
  /** After a tagged field: the field must have used exactly its declared size. */
  endTag(end: number): void {
    if (this.offset !== end) throw new ProtocolError('tagged field size does not match its contents');
  }
}

function integer(value: number, type: string): number {
  if (!Number.isInteger(value)) throw new ProtocolError(`cannot write ${String(value)} as an ${type}`);
  return value;
}

/**
 * `value`, or a ProtocolError naming the field when it is null: generated writers call this for
 * fields the version does not allow to be null, which would otherwise go out as a null length.
 */
export function nonNull<T>(value: T | null, field: string, version: number): T {
  if (value === null) throw new ProtocolError(`${field} is null, which version ${version} does not allow`);
  return value;
}

/** Writes message fields into a buffer allocated at the exact size the generated `size` gives. */
export class Writer {
  /** Position in `buf`; byte fields referenced rather than copied take no room there. */
  offset = 0;
  readonly buf: Buffer;
  /** Large byte fields left out of `buf` and referenced instead (see the constructor). */
  private readonly shared: Array<{ at: number; bytes: Uint8Array }> | null;
  private sharedLength = 0;

  /**
   * A writer for `size` bytes. With `shareLargeBytes`, byte fields of 32 KiB or more (Fetch
   * records) are not copied: {@link chunks} returns the output with them referenced in place, and
   * `sharedBytes` of them (see {@link largeBytesIn}) need no room in `buf`.
   */
  constructor(size: number, options: { shareLargeBytes?: boolean; sharedBytes?: number } = {}) {
    this.shared = options.shareLargeBytes ? [] : null;
    this.buf = Buffer.allocUnsafe(this.shared ? size - (options.sharedBytes ?? 0) : size);
  }

  /** Bytes written so far, referenced ones included. */
  get length(): number {
    return this.offset + this.sharedLength;
  }

  /** The bytes written, as one or more buffers to send in order. */
  chunks(): Buffer[] {
    if (!this.shared || this.shared.length === 0) return [this.buf.subarray(0, this.offset)];
    const out: Buffer[] = [];
    let from = 0;
    for (const { at, bytes } of this.shared) {
      if (at > from) out.push(this.buf.subarray(from, at));
      out.push(
        Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      );
      from = at;
    }
    if (this.offset > from) out.push(this.buf.subarray(from, this.offset));
    return out;
  }

  // Buffer writes null, undefined and NaN as 0 and drops a fraction: refused here instead, so a
  // wrong value is an error rather than a wrong number on the wire.
  writeInt8(value: number): void {
    this.offset = this.buf.writeInt8(integer(value, 'int8'), this.offset);
  }
  writeInt16(value: number): void {
    this.offset = this.buf.writeInt16BE(integer(value, 'int16'), this.offset);
  }
  writeUint16(value: number): void {
    this.offset = this.buf.writeUInt16BE(integer(value, 'uint16'), this.offset);
  }
  writeInt32(value: number): void {
    this.offset = this.buf.writeInt32BE(integer(value, 'int32'), this.offset);
  }
  writeUint32(value: number): void {
    this.offset = this.buf.writeUInt32BE(integer(value, 'uint32'), this.offset);
  }
  writeInt64(value: bigint): void {
    this.offset = this.buf.writeBigInt64BE(value, this.offset);
  }
  writeFloat64(value: number): void {
    if (typeof value !== 'number') throw new ProtocolError(`cannot write ${String(value)} as a float64`);
    this.offset = this.buf.writeDoubleBE(value, this.offset);
  }
  writeBool(value: boolean): void {
    if (typeof value !== 'boolean') throw new ProtocolError(`cannot write ${String(value)} as a bool`);
    this.buf[this.offset++] = value ? 1 : 0;
  }
  writeUnsignedVarint(value: number): void {
    this.offset = writeUnsignedVarint(this.buf, this.offset, value);
  }
  writeUuid(value: string): void {
    if (!UUID_RE.test(value)) throw new ProtocolError(`not a UUID: ${value}`);
    this.offset += this.buf.write(value.replaceAll('-', ''), this.offset, 16, 'hex');
  }
  private writeLength(length: number, compact: boolean, wide: boolean): void {
    if (compact) this.writeUnsignedVarint(length + 1);
    else if (wide) this.writeInt32(length);
    else this.writeInt16(length);
  }
  writeNullableString(value: string | null, compact: boolean): void {
    if (value === null) {
      this.writeLength(-1, compact, false);
      return;
    }
    const length = Buffer.byteLength(value);
    this.writeLength(length, compact, false);
    this.offset += this.buf.write(value, this.offset, length, 'utf8');
  }
  writeNullableBytes(value: Uint8Array | null, compact: boolean): void {
    if (value === null) {
      this.writeLength(-1, compact, true);
      return;
    }
    this.writeLength(value.length, compact, true);
    this.writeRaw(value);
  }
  /** Records (or null) with their length; pieces are written in order, each like {@link writeRaw}. */
  writeNullableRecords(value: Records | null, compact: boolean): void {
    if (value === null || !isPieces(value)) {
      this.writeNullableBytes(value, compact);
      return;
    }
    this.writeLength(piecesLength(value), compact, true);
    for (const piece of value) this.writeRaw(piece);
  }
  writeArrayLength(length: number, compact: boolean): void {
    this.writeLength(length, compact, true);
  }
  writeRaw(value: Uint8Array): void {
    if (this.shared && value.length >= SHARE_BYTES) {
      this.shared.push({ at: this.offset, bytes: value });
      this.sharedLength += value.length;
      return;
    }
    this.buf.set(value, this.offset);
    this.offset += value.length;
  }
  /** The tagged-field section: known fields and kept unknown ones, in ascending tag order. */
  writeTaggedFields(known: readonly TaggedWrite[], unknown: readonly TaggedField[] | undefined): void {
    const all = mergeTags(known, unknown);
    this.writeUnsignedVarint(all.length);
    for (const field of all) {
      this.writeUnsignedVarint(field.tag);
      if ('data' in field) {
        this.writeUnsignedVarint(field.data.length);
        this.writeRaw(field.data);
      } else {
        this.writeUnsignedVarint(field.size);
        field.write(this);
      }
    }
  }
}

function mergeTags(
  known: readonly TaggedWrite[],
  unknown: readonly TaggedField[] | undefined,
): Array<TaggedWrite | TaggedField> {
  if (!unknown || unknown.length === 0) return known as TaggedWrite[];
  return [...known, ...unknown].sort((a, b) => a.tag - b.tag);
}

/**
 * The total length of the byte values of 32 KiB or more in a message value: what a writer with
 * `shareLargeBytes` references instead of copying, if every one of them is written.
 */
export function largeBytesIn(value: unknown): number {
  if (value instanceof Uint8Array) return value.length >= SHARE_BYTES ? value.length : 0;
  if (value === null || typeof value !== 'object') return 0;
  let total = 0;
  for (const field of Array.isArray(value) ? value : Object.values(value)) total += largeBytesIn(field);
  return total;
}

/** Bytes of a length prefix. */
export function lengthSize(length: number, compact: boolean, wide: boolean): number {
  if (compact) return unsignedVarintSize(length + 1);
  return wide ? 4 : 2;
}

/** Bytes of a (nullable) string with its length. */
export function stringSize(value: string | null, compact: boolean): number {
  if (value === null) return lengthSize(-1, compact, false);
  const length = Buffer.byteLength(value);
  return lengthSize(length, compact, false) + length;
}

/** Bytes of (nullable) bytes with their length. */
export function bytesSize(value: Uint8Array | null, compact: boolean): number {
  if (value === null) return lengthSize(-1, compact, true);
  return lengthSize(value.length, compact, true) + value.length;
}

/** Bytes of (nullable) records with their length, whether one buffer or pieces. */
export function recordsSize(value: Records | null, compact: boolean): number {
  if (value === null || !isPieces(value)) return bytesSize(value, compact);
  const length = piecesLength(value);
  return lengthSize(length, compact, true) + length;
}

/** Bytes of an array length prefix. */
export function arrayLengthSize(length: number, compact: boolean): number {
  return lengthSize(length, compact, true);
}

/** Bytes of a tagged-field section. */
export function taggedFieldsSize(
  known: readonly TaggedWrite[],
  unknown: readonly TaggedField[] | undefined,
): number {
  let size = unsignedVarintSize(known.length + (unknown?.length ?? 0));
  for (const field of known)
    size += unsignedVarintSize(field.tag) + unsignedVarintSize(field.size) + field.size;
  for (const field of unknown ?? []) {
    size += unsignedVarintSize(field.tag) + unsignedVarintSize(field.data.length) + field.data.length;
  }
  return size;
}

export { unsignedVarintSize };

/** Whether two decoded values are equal field by field (for tagged struct defaults). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) {
    return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export const EMPTY_BYTES: Buffer = EMPTY;

/**
 * One message type of one schema: its versions and its generated reader, writer and size.
 * Values of type `T` are plain objects; int64 is `bigint`, bytes and records `Buffer` (a records
 * field being written may also be pieces, see {@link Records}).
 */
export interface MessageCodec<T> {
  readonly name: string;
  /** The API key for requests and responses; null for headers and data types. */
  readonly apiKey: number | null;
  readonly kind: 'request' | 'response' | 'header' | 'data';
  readonly minVersion: number;
  readonly maxVersion: number;
  /** The first flexible version, or null if none is. */
  readonly flexibleMin: number | null;
  read(reader: Reader, version: number): T;
  write(writer: Writer, value: T, version: number): void;
  size(value: T, version: number): number;
  /** A value with every field at its default. */
  defaults(): T;
}

/** Encodes `value` at `version` into a new buffer of exactly the right size. */
export function encodeMessage<T>(codec: MessageCodec<T>, value: T, version: number): Buffer {
  const writer = new Writer(codec.size(value, version));
  codec.write(writer, value, version);
  return writer.buf;
}

/** Decodes a whole buffer as `codec` at `version`; bytes left over are an error. */
export function decodeMessage<T>(codec: MessageCodec<T>, buf: Buffer, version: number): T {
  const reader = new Reader(buf);
  const value = codec.read(reader, version);
  if (reader.remaining !== 0) throw new ProtocolError(`${reader.remaining} bytes left after ${codec.name}`);
  return value;
}

/** Reads an array: its length, then each element; null when the length is -1 and nulls are allowed. */
export function readArray<T>(
  r: Reader,
  compact: boolean,
  nullable: boolean,
  element: (r: Reader) => T,
): T[] | null {
  const length = r.readArrayLength(compact);
  if (length < 0) {
    if (!nullable) throw new ProtocolError('null in a non-nullable array');
    return null;
  }
  const out = new Array<T>(length);
  for (let i = 0; i < length; i++) out[i] = element(r);
  return out;
}

/** Writes an array (or null) with its length. */
export function writeArray<T>(
  w: Writer,
  value: readonly T[] | null,
  compact: boolean,
  element: (w: Writer, item: T) => void,
): void {
  if (value === null) {
    w.writeArrayLength(-1, compact);
    return;
  }
  w.writeArrayLength(value.length, compact);
  for (const item of value) element(w, item);
}

/** Bytes of an array (or null) with its length. */
export function arraySize<T>(
  value: readonly T[] | null,
  compact: boolean,
  element: (item: T) => number,
): number {
  if (value === null) return arrayLengthSize(-1, compact);
  let size = arrayLengthSize(value.length, compact);
  for (const item of value) size += element(item);
  return size;
}

/** Bytes of an array (or null) of fixed-size elements. */
export function fixedArraySize(
  value: readonly unknown[] | null,
  compact: boolean,
  elementSize: number,
): number {
  if (value === null) return arrayLengthSize(-1, compact);
  return arrayLengthSize(value.length, compact) + value.length * elementSize;
}

export const NO_TAGS: readonly TaggedWrite[] = Object.freeze([]);
