/**
 * The mqtt suite's side of its load-generator processes: forks them, asks and waits for answers,
 * and relays delivery counts from the processes holding subscribers to those holding publishers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ToWorker } from './mqtt-load-protocol.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'mqtt-load-worker.js');
const ANSWER_TIMEOUT_MS = 60_000;

type Answer = Exclude<FromWorker, { type: 'delivered' } | { type: 'error' }>;

/** One load-generator process. */
export class LoadWorker {
  readonly pid: number;
  private readonly waiting = new Map<string, (answer: Answer) => void>();
  private failure: Error | null = null;
  private readonly exited: Promise<void>;

  constructor(
    private readonly child: ChildProcess,
    onDelivered: (worker: LoadWorker, counts: number[]) => void,
  ) {
    this.pid = child.pid ?? -1;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (message: FromWorker) => {
      if (message.type === 'delivered') return onDelivered(this, message.counts);
      if (message.type === 'error') {
        this.failure ??= new Error(`load generator: ${message.message}`);
        return;
      }
      const resolve = this.waiting.get(message.type);
      this.waiting.delete(message.type);
      resolve?.(message);
    });
    child.once('exit', (code, signal) => {
      this.failure ??= new Error(`load generator exited (${signal ?? code})`);
    });
  }

  /** The first error the process reported, if any: a run with one is not to be trusted. */
  get error(): Error | null {
    return this.failure;
  }

  tell(message: ToWorker): void {
    if (this.child.connected) this.child.send(message);
  }

  /** Sends a message and waits for the answer of the given type. */
  async ask<T extends Answer['type']>(message: ToWorker, answer: T): Promise<Extract<Answer, { type: T }>> {
    const reply = new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(answer);
        reject(this.failure ?? new Error(`load generator gave no ${answer} in time`));
      }, ANSWER_TIMEOUT_MS);
      const poll = setInterval(() => {
        if (this.failure === null) return;
        clearInterval(poll);
        clearTimeout(timer);
        this.waiting.delete(answer);
        reject(this.failure);
      }, 50);
      this.waiting.set(answer, (value) => {
        clearInterval(poll);
        clearTimeout(timer);
        resolve(value);
      });
    });
    this.tell(message);
    return (await reply) as Extract<Answer, { type: T }>;
  }

  clearError(): void {
    this.failure = null;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * The load-generator processes of a run, with the credit relay: the sum over processes of each
 * publisher's deliveries goes to every process, where the publisher holding that index takes it.
 */
export class LoadWorkers {
  readonly workers: LoadWorker[];
  private readonly latest = new Map<LoadWorker, number[]>();
  private publisherWorkers: readonly LoadWorker[] = [];

  constructor(count: number) {
    this.workers = Array.from({ length: count }, () => {
      // Through sh so the open-file limit is raised to the hard limit for 10,000 connections.
      const child = spawn(
        'sh',
        ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', process.execPath, WORKER],
        { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
      );
      return new LoadWorker(child, (worker, counts) => this.relay(worker, counts));
    });
  }

  /** Forgets the previous scenario's counts; credit goes to `publisherWorkers` from now on. */
  reset(publisherWorkers: readonly LoadWorker[]): void {
    this.publisherWorkers = publisherWorkers;
    this.latest.clear();
    for (const worker of this.workers) worker.clearError();
  }

  firstError(): Error | null {
    return this.workers.find((w) => w.error !== null)?.error ?? null;
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.stop()));
  }

  private relay(from: LoadWorker, counts: number[]): void {
    this.latest.set(from, counts);
    const delivered = new Array<number>(counts.length).fill(0);
    for (const perWorker of this.latest.values())
      perWorker.forEach((count, publisher) => {
        delivered[publisher] = (delivered[publisher] ?? 0) + count;
      });
    for (const worker of this.publisherWorkers) worker.tell({ type: 'credit', delivered });
  }
}
