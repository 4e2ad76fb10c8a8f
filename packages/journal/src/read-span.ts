import type { SegmentSource } from './offload.js';
import type { ReadThreads } from './read-threads.js';

/** Local reads at least this long are split into pieces read at the same time. */
const PIECE_BYTES = 1024 * 1024;
/** Pieces of one span in flight at once (the thread pool has 4 threads by default). */
const MAX_PIECES = 4;
/**
 * The first piece of a split read: short, so the caller can start checking frames while the
 * pieces after it are still being copied instead of waiting for a whole piece to arrive.
 */
const FIRST_PIECE_BYTES = 128 * 1024;
/** Shorter reads stay on the thread pool: a read thread's round trip costs more than it saves. */
const MIN_THREAD_READ_BYTES = 256 * 1024;

interface Piece {
  /** Start and end of the piece, relative to the span. */
  start: number;
  end: number;
  /**
   * For a piece a read thread read and checked: where the whole frames from its start that match
   * their checksums end, relative to the span (`start` when none do). -1 for a piece the caller
   * checks itself.
   */
  checkedEnd: number;
  /** Resolves to the bytes read into the piece (fewer than asked only where the source ends). */
  done: Promise<number>;
  settled: boolean;
  bytesRead: number;
  error: Error | null;
}

/**
 * One contiguous read of a segment's log into `buffer`: fresh memory, or part of the buffer a
 * caller lent the read (see `ReadMemory`); either way nothing else writes to it while views of
 * it handed to the reader are in use. A long read of a local file is split into pieces read in
 * parallel on the thread pool, so copying from the page cache uses more than one core and the
 * caller can check the first frames while later pieces are still being read.
 */
export class ReadSpan {
  /** Byte position in the log of `buffer[0]`. */
  readonly position: number;
  readonly buffer: Buffer;
  readonly #pieces: Piece[] = [];

  /**
   * Starts reading `buffer.length` bytes of the log from `position` into `buffer`. With `threads`,
   * a long read of a local file into shared memory goes to the read threads instead, split where
   * `frameStartAtOrBefore` knows frames to start, and comes back checked.
   */
  constructor(
    source: SegmentSource,
    position: number,
    buffer: Buffer,
    threads?: { threads: ReadThreads; frameStartAtOrBefore: (position: number) => number },
  ) {
    this.position = position;
    this.buffer = buffer;
    const fd = localFd(source);
    if (
      threads !== undefined &&
      fd !== null &&
      buffer.buffer instanceof SharedArrayBuffer &&
      buffer.length >= MIN_THREAD_READ_BYTES &&
      threads.threads.ready()
    ) {
      this.#readOnThreads(fd, buffer.buffer, threads.threads, threads.frameStartAtOrBefore);
      return;
    }
    const length = buffer.length;
    let start = 0;
    for (const end of pieceEnds(length, fd !== null)) {
      const pieceStart = start;
      start = end;
      // At most MAX_PIECES in flight: a piece starts once the one MAX_PIECES before it is in.
      const before = this.#pieces[this.#pieces.length - MAX_PIECES];
      const read = (): Promise<number> => fill(source, buffer, pieceStart, end, position);
      this.#track(pieceStart, end, before === undefined ? read() : before.done.then(read));
    }
  }

  /**
   * One piece per read thread, each starting where a frame starts (the span itself starts at a
   * frame), so each thread can check the frames it copied.
   */
  #readOnThreads(
    fd: number,
    memory: SharedArrayBuffer,
    threads: ReadThreads,
    frameStartAtOrBefore: (position: number) => number,
  ): void {
    const length = this.buffer.length;
    const starts = [0];
    for (let k = 1; k < threads.count; k++) {
      const start =
        frameStartAtOrBefore(this.position + Math.floor((k * length) / threads.count)) - this.position;
      if (start > (starts[starts.length - 1] as number) && start < length) starts.push(start);
    }
    starts.forEach((start, k) => {
      const end = starts[k + 1] ?? length;
      const piece = this.#track(
        start,
        end,
        threads
          .read(fd, memory, this.buffer.byteOffset + start, end - start, this.position + start)
          .then((result) => {
            piece.checkedEnd = start + result.checkedEnd;
            return result.bytesRead;
          }),
      );
    });
  }

  #track(start: number, end: number, reading: Promise<number>): Piece {
    const piece: Piece = {
      start,
      end,
      checkedEnd: -1,
      done: Promise.resolve(0),
      settled: false,
      bytesRead: 0,
      error: null,
    };
    piece.done = reading.then(
      (n) => {
        piece.settled = true;
        piece.bytesRead = n;
        return n;
      },
      (error: unknown) => {
        piece.settled = true;
        piece.error = error instanceof Error ? error : new Error(String(error));
        return 0;
      },
    );
    this.#pieces.push(piece);
    return piece;
  }

  /**
   * Where the frames from `at` (relative to the span) that read threads already checked end: `at`
   * is where a checked piece starts, and the run goes on through the pieces after it that were
   * checked to their ends. `at` itself when no thread checked frames from there.
   */
  checkedFrom(at: number): number {
    let checked = at;
    for (const piece of this.#pieces) {
      if (piece.start < checked) continue;
      if (piece.start > checked || !piece.settled || piece.error !== null || piece.checkedEnd < 0) break;
      checked = piece.checkedEnd;
      if (checked < piece.end) break;
    }
    return checked;
  }

  /** Bytes past `position` the span was asked to hold. */
  get length(): number {
    return this.buffer.length;
  }

  /**
   * How many contiguous bytes from the span's start it holds, if that is known without waiting
   * (every piece up to `upTo` has arrived); null otherwise. Lets a scan check the frames already
   * read one after the other without awaiting a promise for each.
   */
  availableNow(upTo: number): number | null {
    let start = 0;
    for (const piece of this.#pieces) {
      if (start >= upTo) return start;
      if (!piece.settled || piece.error !== null) return null;
      start += piece.bytesRead;
      if (start < piece.end) return start;
    }
    return start;
  }

  /** How many contiguous bytes from the span's start have arrived so far (without waiting). */
  filledNow(): number {
    let start = 0;
    for (const piece of this.#pieces) {
      if (!piece.settled || piece.error !== null) return start;
      start += piece.bytesRead;
      if (start < piece.end) return start;
    }
    return start;
  }

  /**
   * Waits until the span holds its bytes up to `upTo` (relative to the span) and returns how many
   * contiguous bytes from its start it holds: at least `upTo`, fewer only where the source ends.
   */
  async available(upTo: number): Promise<number> {
    let start = 0;
    for (const piece of this.#pieces) {
      if (start >= upTo) return start;
      if (!piece.settled) await piece.done;
      if (piece.error !== null) throw piece.error;
      start += piece.bytesRead;
      if (start < piece.end) return start;
    }
    return start;
  }

  /** Waits for every piece still being read (so nothing reads a handle after it is closed). */
  async settle(): Promise<void> {
    await Promise.all(this.#pieces.map((piece) => piece.done));
  }
}

/**
 * Where the pieces of a read of `length` bytes end: one piece for a short or remote read; for a
 * long local one, a short first piece and then pieces of about {@link PIECE_BYTES}.
 */
export function pieceEnds(length: number, local: boolean): number[] {
  if (!local || length < 2 * PIECE_BYTES) return [length];
  const ends = [FIRST_PIECE_BYTES];
  const rest = length - FIRST_PIECE_BYTES;
  const pieceBytes = Math.ceil(rest / Math.floor(rest / PIECE_BYTES));
  for (let end = FIRST_PIECE_BYTES + pieceBytes; end < length; end += pieceBytes) ends.push(end);
  ends.push(length);
  return ends;
}

/** The descriptor of a local log file (a `FileHandle`), or null for an offloaded segment's copy. */
function localFd(source: SegmentSource): number | null {
  const fd = (source as { fd?: unknown }).fd;
  return typeof fd === 'number' ? fd : null;
}

/** Reads log bytes `position + start .. position + end` into `buffer[start..end)`. */
async function fill(
  source: SegmentSource,
  buffer: Buffer,
  start: number,
  end: number,
  position: number,
): Promise<number> {
  let filled = start;
  while (filled < end) {
    const { bytesRead } = await source.read(buffer, filled, end - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled - start;
}
