/**
 * A segment's sparse offset index: entries of (offset relative to the segment's base, byte
 * position of that batch's frame), both unsigned 32-bit big-endian, strictly increasing. One entry
 * is added every `indexIntervalBytes` of log, so a lookup is a binary search plus a short scan.
 */
export class OffsetIndex {
  static readonly ENTRY_BYTES = 8;

  #buf: Buffer;
  #count: number;

  /** An index over `contents` (a whole index file), or an empty one. */
  constructor(contents?: Buffer) {
    this.#buf = contents ?? Buffer.alloc(64 * OffsetIndex.ENTRY_BYTES);
    this.#count = contents ? Math.floor(contents.length / OffsetIndex.ENTRY_BYTES) : 0;
  }

  get length(): number {
    return this.#count;
  }

  relativeOffsetAt(i: number): number {
    return this.#buf.readUInt32BE(i * OffsetIndex.ENTRY_BYTES);
  }

  positionAt(i: number): number {
    return this.#buf.readUInt32BE(i * OffsetIndex.ENTRY_BYTES + 4);
  }

  append(relativeOffset: number, position: number): void {
    const at = this.#count * OffsetIndex.ENTRY_BYTES;
    if (at + OffsetIndex.ENTRY_BYTES > this.#buf.length) {
      const grown = Buffer.alloc(Math.max(this.#buf.length * 2, 64 * OffsetIndex.ENTRY_BYTES));
      this.#buf.copy(grown, 0, 0, at);
      this.#buf = grown;
    }
    this.#buf.writeUInt32BE(relativeOffset, at);
    this.#buf.writeUInt32BE(position, at + 4);
    this.#count++;
  }

  /** Index of the last entry whose relative offset is at most `relativeOffset`, or -1. */
  floor(relativeOffset: number): number {
    return this.#lastAtOrBelow(relativeOffset, 0);
  }

  /** Byte position to start scanning from for a batch at or after `relativeOffset`. */
  positionFor(relativeOffset: number): { position: number; relativeOffset: number } {
    const i = this.floor(relativeOffset);
    return i < 0
      ? { position: 0, relativeOffset: 0 }
      : { position: this.positionAt(i), relativeOffset: this.relativeOffsetAt(i) };
  }

  /** Byte position of the last indexed frame at or before `position`; 0 (the first frame) if none. */
  frameStartAtOrBefore(position: number): number {
    const i = this.#lastAtOrBelow(position, 4);
    return i < 0 ? 0 : this.positionAt(i);
  }

  /**
   * Index of the last entry whose field at byte `field` of the entry (0: relative offset, 4:
   * position; both increase from entry to entry) is at most `value`, or -1.
   */
  #lastAtOrBelow(value: number, field: 0 | 4): number {
    let lo = 0;
    let hi = this.#count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#buf.readUInt32BE(mid * OffsetIndex.ENTRY_BYTES + field) <= value) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Whether entries strictly increase and every position lies before `logBytes`. */
  isConsistent(logBytes: number): boolean {
    for (let i = 0; i < this.#count; i++) {
      const rel = this.relativeOffsetAt(i);
      const pos = this.positionAt(i);
      if (pos >= logBytes) return false;
      if (i > 0 && (rel <= this.relativeOffsetAt(i - 1) || pos <= this.positionAt(i - 1))) return false;
    }
    return true;
  }

  /** The entries as index file contents. */
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#count * OffsetIndex.ENTRY_BYTES);
  }
}
