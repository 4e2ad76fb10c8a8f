import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, RobustMQError } from '@robustmq/core';
import { Harness, rejectionOf, sleep, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.closeAll());

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('server-to-client streams', () => {
  it('delivers every item in order, from async generators and plain iterables', async () => {
    const server = await h.server({}, (s) => {
      s.handleStream<{ n: number }, number>('count', async function* ({ n }) {
        for (let i = 0; i < n; i++) {
          if (i % 100 === 0) await sleep(1);
          yield i;
        }
      });
      s.handleStream('letters', () => ['a', 'b', 'c']);
      s.handleStream('empty', () => []);
    });
    const client = h.client(server.port, { streamWindow: 16 });
    expect(await collect(client.stream<number>('count', { n: 1000 }))).toEqual(
      Array.from({ length: 1000 }, (_, i) => i),
    );
    expect(await collect(client.stream('letters'))).toEqual(['a', 'b', 'c']);
    expect(await collect(client.stream('empty'))).toEqual([]);
    expect(client.inFlight).toBe(0);
  });

  it('carries large binary items byte for byte', async () => {
    const chunks = Array.from({ length: 12 }, () => new Uint8Array(randomBytes(1024 * 1024)));
    const server = await h.server({}, (s) =>
      s.handleStream('chunks', function* () {
        yield* chunks;
      }),
    );
    const client = h.client(server.port, { streamWindow: 4 });
    const got = await collect(client.stream<Uint8Array>('chunks'));
    expect(got).toHaveLength(chunks.length);
    got.forEach((chunk, i) => expect(Buffer.compare(chunk, chunks[i]!)).toBe(0));
  });

  it('lets a slow consumer bound how far the server produces ahead', async () => {
    const window = 8;
    let produced = 0;
    let finished = false;
    const server = await h.server({}, (s) =>
      // A synchronous, endless generator: only the client's credit holds it back.
      s.handleStream('firehose', function* () {
        try {
          for (;;) {
            produced++;
            yield { seq: produced, pad: 'x'.repeat(100) };
          }
        } finally {
          finished = true;
        }
      }),
    );
    const client = h.client(server.port);
    const stream = client.stream<{ seq: number }>('firehose', undefined, { window });
    let taken = 0;
    for await (const item of stream) {
      taken++;
      expect(item.seq).toBe(taken);
      expect(produced).toBeLessThanOrEqual(taken + window);
      if (taken === 20) {
        // Stop consuming for a while: the server must stall within one window.
        await sleep(200);
        expect(produced).toBeLessThanOrEqual(taken + window);
      }
      if (taken === 40) break;
      await sleep(2);
    }
    // Leaving the loop cancels the stream; the generator's finally runs on the server.
    await waitFor(() => finished, 5000, 'the server generator to be closed');
    expect(produced).toBeLessThanOrEqual(40 + window);
    expect(client.inFlight).toBe(0);
  });

  it('cancels the server side on cancel(), aborting the handler signal', async () => {
    let aborted = false;
    const server = await h.server({}, (s) =>
      s.handleStream('watch', async function* (_body, ctx) {
        ctx.signal.addEventListener('abort', () => (aborted = true));
        yield 'first';
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      }),
    );
    const client = h.client(server.port);
    const stream = client.stream<string>('watch');
    const iterator = stream[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ value: 'first', done: false });
    stream.cancel();
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    await waitFor(() => aborted, 5000, 'the stream handler to be aborted');
  });

  it('ends with the handler error after the items sent before it', async () => {
    const server = await h.server({}, (s) =>
      s.handleStream('fails', function* () {
        yield 1;
        yield 2;
        throw new RobustMQError(ErrorCode.OffsetOutOfRange, 'offset 99 is beyond the log end');
      }),
    );
    const client = h.client(server.port);
    const got: unknown[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream('fails')) got.push(item);
      })(),
    );
    expect(got).toEqual([1, 2]);
    expect(isRobustMQError(error, ErrorCode.OffsetOutOfRange)).toBe(true);
  });

  it('fails an unknown stream with NOT_FOUND and a stream past its deadline with TIMEOUT', async () => {
    let cancelled = false;
    const server = await h.server({}, (s) =>
      s.handleStream('forever', async function* (_body, ctx) {
        yield 'tick';
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        cancelled = true;
      }),
    );
    const client = h.client(server.port);
    expect(isRobustMQError(await rejectionOf(collect(client.stream('nope'))), ErrorCode.NotFound)).toBe(true);
    const got: unknown[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const item of client.stream('forever', undefined, { deadlineMs: 150 })) got.push(item);
      })(),
    );
    expect(got).toEqual(['tick']);
    expect(isRobustMQError(error, ErrorCode.Timeout)).toBe(true);
    await waitFor(() => cancelled, 5000, 'the server to cancel the stream');
  });

  it('refuses streams beyond maxStreams per connection with UNAVAILABLE', async () => {
    const server = await h.server({ maxStreams: 2 }, (s) =>
      s.handleStream('hold', async function* (_body, ctx) {
        yield 'open';
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      }),
    );
    const client = h.client(server.port);
    const open = [client.stream('hold'), client.stream('hold')];
    for (const stream of open)
      expect(await stream[Symbol.asyncIterator]().next()).toEqual({ value: 'open', done: false });
    const third = await rejectionOf(collect(client.stream('hold')));
    expect(isRobustMQError(third, ErrorCode.Unavailable)).toBe(true);
    open[0]!.cancel();
    await waitFor(() => client.inFlight === 1, 5000, 'the cancelled stream to go');
    const again = client.stream<string>('hold');
    expect(await again[Symbol.asyncIterator]().next()).toEqual({ value: 'open', done: false });
  });

  it('runs streams and calls side by side on one connection', async () => {
    const server = await h.server({}, (s) => {
      s.handleStream<number, number>('range', async function* (n) {
        for (let i = 0; i < n; i++) {
          if (i % 50 === 0) await sleep(1);
          yield i;
        }
      });
      s.handle<number, number>('double', (n) => n * 2);
    });
    const client = h.client(server.port, { streamWindow: 8 });
    const [a, b, doubled] = await Promise.all([
      collect(client.stream<number>('range', 300)),
      collect(client.stream<number>('range', 200)),
      Promise.all(Array.from({ length: 100 }, (_, i) => client.call<number>('double', i))),
    ]);
    expect(a).toHaveLength(300);
    expect(b).toHaveLength(200);
    expect(doubled[99]).toBe(198);
  });
});
