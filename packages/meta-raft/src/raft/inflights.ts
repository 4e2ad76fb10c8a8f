// Flow control for one follower: the append messages sent and not yet acknowledged.

/** A bounded window of in-flight append messages, each remembered by its last index and size. */
export class Inflights {
  private indexes: number[] = [];
  private sizes: number[] = [];
  private start = 0;
  private totalBytes = 0;

  constructor(
    readonly maxMessages: number,
    readonly maxBytes: number,
  ) {}

  get count(): number {
    return this.indexes.length - this.start;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  full(): boolean {
    return this.count >= this.maxMessages || this.totalBytes >= this.maxBytes;
  }

  /** Records a message whose last entry is `index`. */
  add(index: number, bytes: number): void {
    this.indexes.push(index);
    this.sizes.push(bytes);
    this.totalBytes += bytes;
  }

  /** Frees every message whose last entry is at or below `index` (acknowledged). */
  freeLE(index: number): void {
    while (this.start < this.indexes.length && this.indexes[this.start]! <= index) this.freeOne();
    this.compactStorage();
  }

  /** Frees the oldest message: a heartbeat response shows the follower is alive, so try again. */
  freeFirstOne(): void {
    if (this.count > 0) this.freeOne();
    this.compactStorage();
  }

  reset(): void {
    this.indexes = [];
    this.sizes = [];
    this.start = 0;
    this.totalBytes = 0;
  }

  private freeOne(): void {
    this.totalBytes -= this.sizes[this.start]!;
    this.start++;
  }

  private compactStorage(): void {
    if (this.start === this.indexes.length) {
      this.reset();
    } else if (this.start > 64 && this.start * 2 > this.indexes.length) {
      this.indexes = this.indexes.slice(this.start);
      this.sizes = this.sizes.slice(this.start);
      this.start = 0;
    }
  }
}
