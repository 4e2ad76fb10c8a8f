import type { AppendResult, Message, RecordBatch, RecordCompression } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { describe, expect, it } from 'vitest';
import { ShardLog } from '../src/message-log.js';
import { compressionNoting, jsonCodec } from './helpers/in-process.js';

/** Memory storage whose appends wait until the test lets them through (or fails them). */
class GatedStorage extends MemoryStorageEngine {
  /** Records per append call, in the order called. */
  readonly appends: number[] = [];
  private readonly gates: Array<(error: Error | null) => void> = [];

  override append(shard: string, batches: readonly RecordBatch[]): Promise<AppendResult> {
    this.appends.push(batches.reduce((n, b) => n + b.recordCount, 0));
    return new Promise<void>((resolve, reject) =>
      this.gates.push((error) => (error ? reject(error) : resolve())),
    ).then(() => super.append(shard, batches));
  }

  get waiting(): number {
    return this.gates.length;
  }

  /** Lets the oldest waiting append complete (or fail with `error`). */
  release(error: Error | null = null): void {
    this.gates.shift()!(error);
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

function message(n: number): Message {
  return { topic: 'q', key: null, payload: Buffer.from(`m${n}`), headers: [], timestamp: n };
}

async function gatedLog() {
  const storage = new GatedStorage();
  await storage.createShard('q/0');
  const log = new ShardLog(storage, jsonCodec, 'q', 'q/0');
  const answers: Array<[number, unknown, number]> = [];
  const seen: number[] = [];
  log.listeners.add((base, messages) => messages.forEach((_, i) => seen.push(base + i)));
  const append = (n: number) =>
    log.appendThen(message(n), (error, offset) => answers.push([n, error, offset]));
  return { storage, log, answers, seen, append };
}

describe('the shard log', () => {
  it('writes two batches at a time; appends meanwhile go out together, in order, each answered once', async () => {
    const { storage, log, answers, seen, append } = await gatedLog();
    [0, 1, 2].forEach(append);
    await turn();
    expect(storage.appends).toEqual([3]);
    append(3);
    await turn();
    expect(storage.appends).toEqual([3, 1]);

    append(4);
    await turn();
    append(5);
    await turn();
    // Nothing is durable yet: nobody is answered, nothing is delivered, no third batch is written.
    expect(storage.appends).toEqual([3, 1]);
    expect(answers).toEqual([]);
    expect(seen).toEqual([]);

    storage.release();
    await turn();
    expect(answers).toEqual([
      [0, null, 0],
      [1, null, 1],
      [2, null, 2],
    ]);
    expect(seen).toEqual([0, 1, 2]);
    // The appends that waited form one batch.
    expect(storage.appends).toEqual([3, 1, 2]);

    storage.release();
    storage.release();
    await turn();
    expect(answers.map(([n, , offset]) => [n, offset])).toEqual([0, 1, 2, 3, 4, 5].map((n) => [n, n]));
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    expect(storage.waiting).toBe(0);

    const stored = await log.read(0);
    expect(stored.messages.map((m) => Buffer.from(m.payload).toString())).toEqual(
      [0, 1, 2, 3, 4, 5].map((n) => `m${n}`),
    );
  });

  it('fails only the appends of a failed write and goes on with the next', async () => {
    const { storage, answers, seen, append } = await gatedLog();
    [0, 1].forEach(append);
    await turn();
    append(2);
    await turn();
    storage.release(new Error('disk gone'));
    await turn();
    expect(answers.map(([n, error]) => [n, (error as Error | null)?.message])).toEqual([
      [0, 'disk gone'],
      [1, 'disk gone'],
    ]);
    expect(seen).toEqual([]);
    expect(storage.appends).toEqual([2, 1]);
    storage.release();
    await turn();
    expect(answers[2]).toEqual([2, null, 0]);
    expect(seen).toEqual([0]);
  });

  it('writes with the topic’s codec, and keeps the last one known while the catalog is out of reach', async () => {
    const storage = new MemoryStorageEngine();
    await storage.createShard('q/0');
    const { records, asked } = compressionNoting();
    let lookup: () => Promise<RecordCompression> = () => Promise.resolve('gzip');
    const log = new ShardLog(storage, records, 'q', 'q/0', () => lookup());
    expect(await log.append(message(1))).toBe(0);
    lookup = () => Promise.reject(new Error('meta service unavailable'));
    expect(await log.append(message(2))).toBe(1);
    expect(asked).toEqual(['gzip', 'gzip']);
  });
});
