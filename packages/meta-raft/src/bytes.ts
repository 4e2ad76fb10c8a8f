import { ErrorCode, RobustMQError } from '@robustmq/core';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const TWO_32 = 2 ** 32;

/**
 * A growable big-endian byte writer for our on-disk and on-wire formats. Every format built on it
 * is deterministic: the same calls produce the same bytes.
 */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;

  constructor(initialCapacity = 256) {
    this.buffer = new Uint8Array(Math.max(16, initialCapacity));
    this.view = new DataView(this.buffer.buffer);
  }

  u8(value: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
  }

  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
  }

  /** A non-negative safe integer (revisions, indexes) as 8 bytes. */
  u53(value: number): void {
    this.reserve(8);
    this.view.setUint32(this.length, Math.floor(value / TWO_32));
    this.view.setUint32(this.length + 4, value % TWO_32);
    this.length += 8;
  }

  /** Length-prefixed bytes. */
  bytes(value: Uint8Array): void {
    this.u32(value.length);
    this.raw(value);
  }

  /** Length-prefixed UTF-8. */
  string(value: string): void {
    this.bytes(encoder.encode(value));
  }

  raw(value: Uint8Array): void {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  /** The bytes written so far, as a view of the writer's buffer. */
  finish(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  get size(): number {
    return this.length;
  }

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }
}

/** Reads what {@link ByteWriter} wrote; any malformed input throws `CORRUPT`. */
export class ByteReader {
  private readonly view: DataView;
  private position = 0;

  constructor(
    private readonly buffer: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  u8(): number {
    this.need(1);
    const value = this.view.getUint8(this.position);
    this.position += 1;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.position);
    this.position += 4;
    return value;
  }

  u53(): number {
    this.need(8);
    const high = this.view.getUint32(this.position);
    const low = this.view.getUint32(this.position + 4);
    if (high >= 2 ** 21) this.fail('integer above 2^53');
    this.position += 8;
    return high * TWO_32 + low;
  }

  /**
   * Length-prefixed bytes, copied into a plain Uint8Array (even from a Buffer) so the result
   * neither pins the source buffer nor differs in type with where it was read from.
   */
  bytes(): Uint8Array {
    const length = this.u32();
    this.need(length);
    const value = new Uint8Array(this.buffer.subarray(this.position, this.position + length));
    this.position += length;
    return value;
  }

  string(): string {
    const length = this.u32();
    this.need(length);
    let value: string;
    try {
      value = decoder.decode(this.buffer.subarray(this.position, this.position + length));
    } catch (error) {
      this.fail('invalid UTF-8', error);
    }
    this.position += length;
    return value;
  }

  /** Fails unless every byte has been read: trailing bytes mean the format was misread. */
  end(): void {
    if (this.position !== this.buffer.length)
      this.fail(`${this.buffer.length - this.position} trailing bytes`);
  }

  fail(reason: string, cause?: unknown): never {
    throw new RobustMQError(ErrorCode.Corrupt, `${this.what}: ${reason} at byte ${this.position}`, { cause });
  }

  private need(count: number): void {
    if (this.position + count > this.buffer.length) this.fail('truncated');
  }
}
