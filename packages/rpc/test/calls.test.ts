import { randomBytes, createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, RobustMQError } from '@robustmq/core';
import type { CallContext } from '../src/index.js';
import { Harness, rejectionOf, sleep, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.closeAll());

describe('request/response', () => {
  it('answers a call with the handler reply', async () => {
    const server = await h.server({}, (s) => {
      s.handle<{ a: number; b: number }, { sum: number }>('add', ({ a, b }) => ({ sum: a + b }));
      s.handle('nothing', () => undefined);
    });
    const client = h.client(server.port);
    await expect(client.call('add', { a: 2, b: 40 })).resolves.toEqual({ sum: 42 });
    await expect(client.call('nothing')).resolves.toBeUndefined();
  });

  it('pipelines 1000 calls on one connection and matches replies that complete out of order', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    const server = await h.server({}, (s) =>
      s.handle<number, number>('echo', async (n) => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        // Later calls finish first for part of the batch.
        await sleep(n % 3 === 0 ? 20 : 1);
        concurrent--;
        return n;
      }),
    );
    const client = h.client(server.port);
    const replies = await Promise.all(Array.from({ length: 1000 }, (_, n) => client.call<number>('echo', n)));
    expect(replies).toEqual(Array.from({ length: 1000 }, (_, n) => n));
    // They really were in flight together on the one connection.
    expect(maxConcurrent).toBeGreaterThan(50);
    expect(server.connectionCount).toBe(1);
  });

  it('carries binary bodies of several MiB byte for byte, both ways', async () => {
    const server = await h.server({}, (s) =>
      s.handle<{ data: Uint8Array }, { digest: string; data: Uint8Array }>('mirror', ({ data }) => ({
        digest: createHash('sha256').update(data).digest('hex'),
        data,
      })),
    );
    const client = h.client(server.port);
    for (const size of [0, 1, 2047, 2048, 3 * 1024 * 1024 + 17, 8 * 1024 * 1024]) {
      const data = new Uint8Array(randomBytes(size));
      const reply = await client.call<{ digest: string; data: Uint8Array }>('mirror', { data });
      expect(reply.digest).toBe(createHash('sha256').update(data).digest('hex'));
      expect(reply.data.constructor).toBe(Uint8Array);
      expect(Buffer.compare(reply.data, data)).toBe(0);
    }
  });

  it('rejects with the error code the handler threw', async () => {
    const server = await h.server({}, (s) => {
      s.handle('missing', () => {
        throw new RobustMQError(ErrorCode.NotFound, 'shard orders/9 does not exist');
      });
      s.handle('conflict', async () => {
        await sleep(1);
        throw new RobustMQError(ErrorCode.Conflict, 'revision 3 expected');
      });
      s.handle('bug', () => {
        throw new TypeError('x is undefined');
      });
    });
    const client = h.client(server.port);
    const notFound = await rejectionOf(client.call('missing'));
    expect(isRobustMQError(notFound, ErrorCode.NotFound)).toBe(true);
    expect((notFound as Error).message).toBe('shard orders/9 does not exist');
    expect(isRobustMQError(await rejectionOf(client.call('conflict')), ErrorCode.Conflict)).toBe(true);
    const internal = await rejectionOf(client.call('bug'));
    expect(isRobustMQError(internal, ErrorCode.Internal)).toBe(true);
    expect((internal as Error).message).toContain('x is undefined');
  });

  it('answers an unknown method with NOT_FOUND and keeps the connection', async () => {
    const server = await h.server({}, (s) => s.handle('known', () => 'ok'));
    const client = h.client(server.port);
    const error = await rejectionOf(client.call('unknown.method', { x: 1 }));
    expect(isRobustMQError(error, ErrorCode.NotFound)).toBe(true);
    expect((error as Error).message).toContain('unknown.method');
    await expect(client.call('known')).resolves.toBe('ok');
    expect(server.connectionCount).toBe(1);
  });

  it('refuses to register a method twice', async () => {
    const server = await h.server();
    server.handle('m', () => 1);
    expect(() => server.handleStream('m', () => [])).toThrow(RobustMQError);
  });

  it('fails a call whose body exceeds the frame limit with TOO_LARGE without sending it', async () => {
    const server = await h.server({}, (s) => s.handle('m', () => 'ok'));
    const client = h.client(server.port, { maxFrameBytes: 64 * 1024 });
    const error = await rejectionOf(client.call('m', new Uint8Array(100 * 1024)));
    expect(isRobustMQError(error, ErrorCode.TooLarge)).toBe(true);
    await expect(client.call('m')).resolves.toBe('ok');
  });

  it('turns a reply above the server frame limit into TOO_LARGE', async () => {
    const server = await h.server({ maxFrameBytes: 64 * 1024 }, (s) =>
      s.handle('big', () => new Uint8Array(100 * 1024)),
    );
    const client = h.client(server.port);
    expect(isRobustMQError(await rejectionOf(client.call('big')), ErrorCode.TooLarge)).toBe(true);
  });
});

describe('deadlines and cancellation', () => {
  it('fails a call past its deadline with TIMEOUT and tells the server to cancel', async () => {
    let seen: CallContext | undefined;
    let abortReason: unknown;
    const server = await h.server({}, (s) =>
      s.handle('slow', (_body, ctx) => {
        seen = ctx;
        return new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            abortReason = ctx.signal.reason;
            resolve('too late');
          });
        });
      }),
    );
    const client = h.client(server.port);
    await client.waitConnected(5000);
    const error = await rejectionOf(client.call('slow', undefined, { deadlineMs: 100 }));
    expect(isRobustMQError(error, ErrorCode.Timeout)).toBe(true);
    expect(seen?.deadline).toBeTypeOf('number');
    await waitFor(() => seen?.signal.aborted === true, 5000, 'the handler to be aborted');
    expect(abortReason).toBeInstanceOf(RobustMQError);
    // The connection is still good, and the late answer did not confuse a later call.
    server.handle('fast', () => 'fast');
    await expect(client.call('fast')).resolves.toBe('fast');
    expect(client.inFlight).toBe(0);
  });

  it('aborts a call through its AbortSignal and cancels it on the server', async () => {
    let aborted = false;
    const server = await h.server({}, (s) =>
      s.handle('wait', (_body, ctx) => {
        return new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve(null);
          }),
        );
      }),
    );
    const client = h.client(server.port);
    await client.waitConnected(5000);
    const controller = new AbortController();
    const pending = rejectionOf(
      client.call('wait', undefined, { signal: controller.signal, deadlineMs: 10_000 }),
    );
    await sleep(50);
    controller.abort();
    expect(isRobustMQError(await pending, ErrorCode.Closed)).toBe(true);
    await waitFor(() => aborted, 5000, 'the server to cancel the call');
  });

  it('holds calls beyond maxInFlight until earlier ones complete', async () => {
    const release: (() => void)[] = [];
    const server = await h.server({}, (s) =>
      s.handle('hold', () => new Promise<string>((resolve) => release.push(() => resolve('done')))),
    );
    const client = h.client(server.port, { maxInFlight: 4 });
    const calls = Array.from({ length: 10 }, () => client.call('hold'));
    await waitFor(() => release.length === 4, 5000, 'four calls to reach the server');
    await sleep(50);
    expect(release).toHaveLength(4);
    expect(client.inFlight).toBe(4);
    expect(client.queued).toBe(6);
    while (release.length < 10) {
      const n = release.length;
      release.forEach((r) => r());
      await waitFor(() => release.length > n, 5000, 'more calls to reach the server');
    }
    release.forEach((r) => r());
    await expect(Promise.all(calls)).resolves.toHaveLength(10);
  });

  it('fails calls CLOSED once the client is closed', async () => {
    const server = await h.server({}, (s) => s.handle('never', () => new Promise(() => {})));
    const client = h.client(server.port);
    await client.waitConnected(5000);
    const pending = rejectionOf(client.call('never'));
    await sleep(20);
    await client.close();
    expect(isRobustMQError(await pending, ErrorCode.Closed)).toBe(true);
    expect(isRobustMQError(await rejectionOf(client.call('never')), ErrorCode.Closed)).toBe(true);
  });
});
