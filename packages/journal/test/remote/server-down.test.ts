import { describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { batch, open, readAll, sha, tempDir } from '../helpers.js';
import { client, rejectionOf, startServer, waitUntil } from './helpers.js';

/** How long `promise` takes to fail, and its error. */
async function failure(promise: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const start = Date.now();
  const error = await rejectionOf(promise);
  return { ms: Date.now() - start, error };
}

describe('journal server down', () => {
  it('fails calls UNAVAILABLE within connectTimeoutMs, not their deadline, and serves them once it is back', async () => {
    const dir = await tempDir();
    let engine = await open(dir);
    let server = await startServer(engine);
    const port = server.port;
    // The helper's request timeout is 20 s: a call waiting that long would fail this test.
    const journal = client(port, { connectTimeoutMs: 400 });
    await journal.createShard('orders/0');
    const before = batch(3000, 1_000);
    const first = await journal.append('orders/0', [before]);

    await server.close();
    await engine.close();
    await waitUntil(() => !journal.connected, 'the client to notice');

    const calls: [string, () => Promise<unknown>][] = [
      ['append', () => journal.append('orders/0', [batch(100)])],
      ['shardInfo', () => journal.shardInfo('orders/0')],
      ['read', () => journal.read('orders/0', 0, { maxBytes: 1024 * 1024 })],
      ['waitForData', () => journal.waitForData('orders/0', first.lastOffset + 1, 5_000)],
      ['createShard', () => journal.createShard('orders/1')],
    ];
    for (const [name, call] of calls) {
      const { ms, error } = await failure(call());
      expect(isRobustMQError(error, ErrorCode.Unavailable), `${name}: ${String(error)}`).toBe(true);
      expect(ms, name).toBeLessThan(3000);
    }

    // Back on the same port: the client reconnects by itself and the same calls go through.
    engine = await open(dir);
    server = await startServer(engine, { port });
    await journal.waitConnected(5000);
    const after = batch(2048, 2_000);
    const second = await journal.append('orders/0', [after]);
    expect(second.baseOffset).toBe(first.lastOffset + 1);
    await journal.waitForData('orders/0', second.baseOffset, 5_000);
    expect((await journal.shardInfo('orders/0')).nextOffset).toBe(second.lastOffset + 1);
    const stored = await readAll(journal, 'orders/0');
    expect(stored.map((s) => sha(s.data))).toEqual([sha(before.data), sha(after.data)]);
  });
});
