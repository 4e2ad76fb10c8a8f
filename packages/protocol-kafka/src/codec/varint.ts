/**
 * Variable-length integers. Flexible message versions use unsigned varints (protobuf style);
 * record batches use zig-zag signed varints and varlongs. Values are JavaScript numbers, exact up
 * to 2^53 - 1, which covers every length, delta and millisecond timestamp in practice.
 */

/** Thrown when bytes run out or a varint is longer than its type allows. */
export class VarintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VarintError';
  }
}

/** Reads an unsigned varint at `offset`; returns the value and the offset after it. */
export function readUnsignedVarint(buf: Uint8Array, offset: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (offset >= buf.length) throw new VarintError('truncated varint');
    const byte = buf[offset++]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return [value, offset];
    scale *= 128;
  }
  throw new VarintError('varint longer than 10 bytes');
}

/** The number of bytes {@link writeUnsignedVarint} uses for `value`. */
export function unsignedVarintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Writes an unsigned varint at `offset`; returns the offset after it. */
export function writeUnsignedVarint(buf: Uint8Array, offset: number, value: number): number {
  while (value >= 128) {
    buf[offset++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[offset++] = value;
  return offset;
}

/** Zig-zag encodes a signed value into an unsigned one (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...). */
export function zigZag(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

/** The inverse of {@link zigZag}. */
export function unZigZag(value: number): number {
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

/** Reads a zig-zag signed varint (or varlong). */
export function readVarint(buf: Uint8Array, offset: number): [value: number, next: number] {
  const [raw, next] = readUnsignedVarint(buf, offset);
  return [unZigZag(raw), next];
}

/** Writes a zig-zag signed varint (or varlong). */
export function writeVarint(buf: Uint8Array, offset: number, value: number): number {
  return writeUnsignedVarint(buf, offset, zigZag(value));
}

/** The size of a zig-zag signed varint. */
export function varintSize(value: number): number {
  return unsignedVarintSize(zigZag(value));
}
