import { readFile } from 'node:fs/promises';

/** What the budget needs of an active segment: a way to close the handles it is not using. */
export interface WriteHandleHolder {
  /**
   * Starts closing the handles no call is using now (syncing first what was written through them
   * and is not yet durable) and returns how many; each is reported with
   * {@link WriteHandleBudget.released} once closed. The next use opens them again.
   */
  releaseIdle(): number;
}

/**
 * Bounds the log handles the active segments of an engine have open (the appending handle and
 * those of durable writes), so that an engine with many thousands of shards stays within the
 * process's open-file limit. A segment reserves a slot before it opens a handle; past the bound,
 * the handles of the least recently used segments that no call is using are closed to make room,
 * and a reservation waits until one is closed. A handle in use is never closed, so calls that need
 * a handle while every one is in use wait for one of those calls to finish.
 */
export class WriteHandleBudget {
  readonly #max: number;
  readonly #onCloseError: (error: unknown) => void;
  /** Holders with handles open (or being closed) and how many, least recently used first. */
  readonly #holders = new Map<WriteHandleHolder, number>();
  /** The most recently used holder: using it again needs no reordering. */
  #latest: WriteHandleHolder | null = null;
  /** Handles open or being closed, all holders together. */
  #open = 0;
  /** Of those, handles being closed to make room. */
  #closing = 0;
  readonly #waiting: { holder: WriteHandleHolder; grant: () => void }[] = [];

  constructor(max: number, onCloseError: (error: unknown) => void) {
    this.#max = max;
    this.#onCloseError = onCloseError;
  }

  /** The bound. */
  get max(): number {
    return this.#max;
  }

  /** Handles open now (or being closed), all holders together. */
  get open(): number {
    return this.#open;
  }

  /**
   * Reserves a slot for a handle `holder` is about to open: at once (undefined) while under the
   * bound, else a promise that resolves once a slot is free. A failed open gives it back with
   * {@link closed}.
   */
  reserve(holder: WriteHandleHolder): Promise<void> | undefined {
    if (this.#waiting.length === 0 && this.#open < this.#max) {
      this.#take(holder);
      return undefined;
    }
    const granted = new Promise<void>((grant) => this.#waiting.push({ holder, grant }));
    this.#shed();
    return granted;
  }

  /** Marks `holder`'s handles as just used. */
  use(holder: WriteHandleHolder): void {
    if (holder === this.#latest) return;
    const held = this.#holders.get(holder);
    if (held === undefined) return;
    this.#holders.delete(holder);
    this.#holders.set(holder, held);
    this.#latest = holder;
  }

  /** A handle of `holder` is no longer in use: while reservations wait, idle handles are closed. */
  idled(): void {
    if (this.#waiting.length > 0) this.#shed();
  }

  /** `holder` closed `count` handles of its own accord (or failed to open a reserved one). */
  closed(holder: WriteHandleHolder, count: number): void {
    if (count === 0) return;
    const held = this.#holders.get(holder) ?? 0;
    const freed = Math.min(count, held);
    this.#open -= freed;
    if (held > freed) {
      this.#holders.set(holder, held - freed);
    } else {
      this.#holders.delete(holder);
      if (this.#latest === holder) this.#latest = null;
    }
    this.#grant();
  }

  /** `holder` closed `count` handles it released for the budget. */
  released(holder: WriteHandleHolder, count: number): void {
    this.#closing -= count;
    this.closed(holder, count);
  }

  /** Reports a handle that failed to close (it is gone either way). */
  closeFailed(error: unknown): void {
    this.#onCloseError(error);
  }

  #take(holder: WriteHandleHolder): void {
    const held = this.#holders.get(holder) ?? 0;
    this.#holders.delete(holder);
    this.#holders.set(holder, held + 1);
    this.#latest = holder;
    this.#open++;
  }

  #grant(): void {
    while (this.#waiting.length > 0 && this.#open < this.#max) {
      const next = this.#waiting.shift()!;
      this.#take(next.holder);
      next.grant();
    }
    if (this.#waiting.length > 0) this.#shed();
  }

  /** Starts closing idle handles, least recently used first, until enough are being closed. */
  #shed(): void {
    let needed = this.#open + this.#waiting.length - this.#max - this.#closing;
    if (needed <= 0) return;
    for (const holder of this.#holders.keys()) {
      const released = holder.releaseIdle();
      this.#closing += released;
      needed -= released;
      if (needed <= 0) return;
    }
  }
}

/** Used where the process's open-file limit cannot be read. */
const FALLBACK_OPEN_FILES = 4096;

/**
 * The default bound of {@link WriteHandleBudget}: half the process's soft limit on open files
 * (Linux; node raises it to the hard limit at start-up), leaving the rest to sockets, the read
 * handles of sealed segments and the files the journal opens briefly.
 */
export async function defaultMaxOpenFiles(): Promise<number> {
  let limits: string;
  try {
    limits = await readFile('/proc/self/limits', 'utf8');
  } catch {
    return FALLBACK_OPEN_FILES;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  if (soft === undefined) return FALLBACK_OPEN_FILES;
  if (soft === 'unlimited') return 1 << 20;
  const limit = Number(soft);
  return Number.isSafeInteger(limit) && limit > 0 ? Math.max(16, Math.floor(limit / 2)) : FALLBACK_OPEN_FILES;
}
