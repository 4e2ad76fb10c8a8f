import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** One piece of a read handed to a read thread. */
export interface ReadThreadRequest {
  id: number;
  fd: number;
  memory: SharedArrayBuffer;
  byteOffset: number;
  length: number;
  position: number;
}

/** A thread's first message says it loaded and takes reads; then one reply per request. */
export type ReadThreadMessage = 'up' | ReadThreadReply;

export type ReadThreadReply =
  | { id: number; bytesRead: number; checkedEnd: number; error?: undefined }
  | { id: number; error: { message: string; code?: string | undefined } };

/** What a read thread found: bytes copied, and how far from the piece's start frames checked out. */
export interface ReadPieceResult {
  bytesRead: number;
  /** End (relative to the piece) of the whole frames from its start whose checksums match; 0 if none. */
  checkedEnd: number;
}

interface Pending {
  resolve: (result: ReadPieceResult) => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** True once the thread said it loaded. */
  up: boolean;
}

/**
 * Threads that read log files into memory shared with the engine's thread and check the frames
 * they read. A long read of a local file into shared memory is split among them, so copying from
 * the page cache and checking checksums use every core while the engine's thread does neither.
 * Threads start when first asked for ({@link ready}) and do not keep the process alive.
 */
export class ReadThreads {
  static readonly #shared = new Map<number, ReadThreads>();

  /**
   * The process's `count` read threads, started now: every journal in a process shares them, so
   * opening journals costs no thread starts after the first, and the first long reads find them up.
   */
  static shared(count: number): ReadThreads {
    let threads = ReadThreads.#shared.get(count);
    if (threads === undefined) {
      threads = new ReadThreads(count, workerScript());
      ReadThreads.#shared.set(count, threads);
    }
    threads.ready();
    return threads;
  }

  readonly count: number;
  readonly #script: URL;
  readonly #threads: (Thread | null)[];
  #next = 0;
  #nextId = 0;
  /** Set once a thread died before it was up: the threads cannot start here, so none is tried again. */
  #broken: Error | null = null;

  /** `count` threads running `script` (the journal's read worker; {@link shared} is the usual way). */
  constructor(count: number, script: URL) {
    this.count = count;
    this.#script = script;
    this.#threads = Array.from({ length: count }, () => null);
  }

  /**
   * Whether every thread is up to take reads. The first ask starts them; until they are up, reads
   * stay on the caller's thread rather than wait for them.
   */
  ready(): boolean {
    if (this.#broken !== null) return false;
    let ready = true;
    for (let slot = 0; slot < this.count; slot++) {
      const thread = this.#threads[slot] ?? this.#start(slot);
      ready &&= thread.up;
    }
    return ready;
  }

  /** Reads `length` bytes of the file `fd` at `position` into `memory` at `byteOffset`, and checks them. */
  read(
    fd: number,
    memory: SharedArrayBuffer,
    byteOffset: number,
    length: number,
    position: number,
  ): Promise<ReadPieceResult> {
    if (this.#broken !== null) return Promise.reject(this.#broken);
    const slot = this.#next;
    this.#next = (this.#next + 1) % this.count;
    const thread = this.#threads[slot] ?? this.#start(slot);
    const id = this.#nextId++;
    const request: ReadThreadRequest = { id, fd, memory, byteOffset, length, position };
    return new Promise<ReadPieceResult>((resolve, reject) => {
      // A thread with reads under way keeps the process alive until they are answered.
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage(request);
    });
  }

  #start(slot: number): Thread {
    const worker = new Worker(this.#script);
    const thread: Thread = { worker, pending: new Map(), up: false };
    this.#threads[slot] = thread;
    const failAll = (error: Error): void => {
      if (this.#threads[slot] === thread) this.#threads[slot] = null;
      if (!thread.up) {
        this.#broken ??= new Error(`journal read threads could not start: ${error.message}`, {
          cause: error,
        });
      }
      for (const waiter of thread.pending.values()) waiter.reject(error);
      thread.pending.clear();
    };
    worker.on('message', (reply: ReadThreadMessage) => {
      if (reply === 'up') {
        thread.up = true;
        return;
      }
      const waiter = thread.pending.get(reply.id);
      if (waiter === undefined) return;
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) thread.worker.unref();
      if (reply.error === undefined) {
        waiter.resolve({ bytesRead: reply.bytesRead, checkedEnd: reply.checkedEnd });
      } else {
        const error: NodeJS.ErrnoException = new Error(reply.error.message);
        if (reply.error.code !== undefined) error.code = reply.error.code;
        waiter.reject(error);
      }
    });
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`journal read thread exited with code ${code}`)));
    // After the listeners: adding a message listener refs the thread's port again.
    worker.unref();
    return thread;
  }
}

/**
 * The thread's script, built beside this module. Under a test runner that loads the TypeScript
 * sources, the built copy in `dist` (tests run after the build).
 */
function workerScript(): URL {
  const beside = new URL('./read-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return new URL('../dist/read-worker.js', import.meta.url);
}
