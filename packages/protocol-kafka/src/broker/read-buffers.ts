/** Reads larger than this get no lent buffer: storage gives them memory of their own. */
const MAX_LENT_BYTES = 32 * 1024 * 1024;
/** Idle buffers kept for later fetches, in bytes; more are left to the garbage collector. */
const MAX_IDLE_BYTES = 96 * 1024 * 1024;
/** Lent buffers come in whole multiples of this, so a buffer fits later fetches of a like size. */
const GRAIN = 1024 * 1024;

/**
 * Buffers Fetch lends to storage reads (`ReadOptions.into`), used again once the response that
 * refers to them has been handed to the socket. A consumer reading at full speed then costs no fresh
 * memory per fetch, and so none of the garbage collections that large allocations set off. They
 * are shared memory, so storage may fill them off the broker's thread (the journal's read threads).
 */
export class ReadBuffers {
  private readonly idle: Buffer[] = [];
  private idleBytes = 0;

  /**
   * A buffer for a read of up to `maxBytes`, or null for reads too large to lend for. It has room
   * for twice that (rounded up), since storage may read ahead past the batches a read returns.
   */
  acquire(maxBytes: number): Buffer | null {
    if (maxBytes <= 0 || maxBytes > MAX_LENT_BYTES / 2) return null;
    const size = Math.ceil((2 * maxBytes) / GRAIN) * GRAIN;
    let best = -1;
    for (let i = 0; i < this.idle.length; i++) {
      const length = this.idle[i]!.length;
      if (length >= size && (best < 0 || length < this.idle[best]!.length)) best = i;
    }
    if (best < 0) return Buffer.from(new SharedArrayBuffer(size));
    const [buffer] = this.idle.splice(best, 1);
    this.idleBytes -= buffer!.length;
    return buffer!;
  }

  /** Takes a buffer back once nothing refers to its bytes any more. */
  release(buffer: Buffer): void {
    if (this.idleBytes + buffer.length > MAX_IDLE_BYTES) return;
    this.idle.push(buffer);
    this.idleBytes += buffer.length;
  }

  /** Bytes held for later fetches. */
  get idleSize(): number {
    return this.idleBytes;
  }
}
