import { ErrorCode, RobustMQError } from '@robustmq/core';

const decoder = new TextDecoder('utf-8', { fatal: true });
const TWO_32 = 2 ** 32;

/**
 * A growable big-endian byte writer for our on-disk and on-wire formats. Every format built on it
 * is deterministic: the same calls produce the same bytes.
 */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private text: Buffer | null = null;
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
    // Straight into the buffer: TextEncoder.encode would allocate an array per string.
    const length = Buffer.byteLength(value, 'utf8');
    this.u32(length);
    this.reserve(length);
    this.text ??= Buffer.from(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
    this.text.write(value, this.length, length, 'utf8');
    this.length += length;
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
    this.text = null;
  }
}

/** Reads what {@link ByteWriter} wrote; any malformed input throws `CORRUPT`. */
export class ByteReader {
  private readonly view: DataView;
  private text: Buffer | null = null;
  private position = 0;

  /**
   * @param views when true, {@link bytes} returns views of `buffer` instead of copies: for a buffer
   *   the caller owns and keeps as it is (such as a private copy of a log entry)
   */
  constructor(
    private readonly buffer: Uint8Array,
    private readonly what: string,
    private readonly views = false,
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
    const view = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return this.views ? view : new Uint8Array(view);
  }

  /** The next `length` bytes, read by a reader of their own (in the same mode). */
  sub(length: number, what: string): ByteReader {
    this.need(length);
    const reader = new ByteReader(
      this.buffer.subarray(this.position, this.position + length),
      what,
      this.views,
    );
    this.position += length;
    return reader;
  }

  string(): string {
    const length = this.u32();
    this.need(length);
    const start = this.position;
    const end = start + length;
    let value: string;
    if (isAscii(this.buffer, start, end)) {
      // ASCII is its own UTF-8; Buffer's latin1 decoding is several times cheaper than TextDecoder.
      this.text ??= Buffer.from(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
      value = this.text.toString('latin1', start, end);
    } else {
      try {
        value = decoder.decode(this.buffer.subarray(start, end));
      } catch (error) {
        this.fail('invalid UTF-8', error);
      }
    }
    this.position = end;
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

function isAscii(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}
