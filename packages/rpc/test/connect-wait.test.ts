import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { Harness, rejectionOf, sleep, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.closeAll());

/** A port nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/** How long `promise` takes to settle, and its error if it rejects. */
async function timed(promise: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const start = Date.now();
  const error = await rejectionOf(promise);
  return { ms: Date.now() - start, error };
}

describe('connectWaitMs', () => {
  it('fails calls UNAVAILABLE within the connect wait while the server is down, and serves them once it is up', async () => {
    const port = await freePort();
    const client = h.client(port, { connectWaitMs: 300, reconnectDelayMs: 10, maxReconnectDelayMs: 50 });

    // Made as the client starts: it waits for the first connection, but only for the connect wait.
    const first = await timed(client.call('who', undefined, { deadlineMs: 20_000 }));
    expect(isRobustMQError(first.error, ErrorCode.Unavailable), String(first.error)).toBe(true);
    expect((first.error as Error).message).toContain('was not sent');
    expect((first.error as Error).message).toContain('ECONNREFUSED');
    expect(first.ms).toBeGreaterThanOrEqual(250);
    expect(first.ms).toBeLessThan(3000);

    // Once the outage is older than the connect wait, calls and streams fail at once.
    const later = await timed(client.call('who', undefined, { deadlineMs: 20_000 }));
    expect(isRobustMQError(later.error, ErrorCode.Unavailable)).toBe(true);
    expect(later.ms).toBeLessThan(250);
    const stream = await timed(
      (async () => {
        for await (const item of client.stream('watch')) expect(item).toBeUndefined();
      })(),
    );
    expect(isRobustMQError(stream.error, ErrorCode.Unavailable)).toBe(true);
    expect(client.queued).toBe(0);

    await h.server({ port }, (s) => s.handle('who', () => 'up'));
    await client.waitConnected(5000);
    await expect(client.call('who', undefined, { deadlineMs: 20_000 })).resolves.toBe('up');
  });

  it('keeps the full deadline on a live connection, and fails fast only once it is lost', async () => {
    let release: () => void = () => {};
    const slow = new Promise<void>((resolve) => (release = resolve));
    const server = await h.server({}, (s) => {
      s.handle('slow', async () => {
        await slow;
        return 'slow done';
      });
      s.handle('quick', () => 'quick done');
      s.handle('never', () => new Promise(() => {}));
    });
    const port = server.port;
    const client = h.client(port, {
      connectWaitMs: 200,
      maxInFlight: 2,
      reconnectDelayMs: 10,
      maxReconnectDelayMs: 50,
    });
    await client.waitConnected(5000);

    // In flight, and queued behind maxInFlight: both outlive the connect wait on a live connection.
    const inFlight = client.call('slow', undefined, { deadlineMs: 20_000 });
    const timesOut = timed(client.call('never', undefined, { deadlineMs: 700 }));
    const queued = client.call('quick', undefined, { deadlineMs: 20_000 });
    await sleep(400);
    expect(client.queued).toBe(1);
    release();
    await expect(inFlight).resolves.toBe('slow done');
    await expect(queued).resolves.toBe('quick done');
    const timeout = await timesOut;
    expect(isRobustMQError(timeout.error, ErrorCode.Timeout), String(timeout.error)).toBe(true);
    expect(timeout.ms).toBeGreaterThanOrEqual(650);

    await server.close();
    await waitFor(() => !client.connected, 5000, 'the client to notice');
    const down = await timed(client.call('quick', undefined, { deadlineMs: 20_000 }));
    expect(isRobustMQError(down.error, ErrorCode.Unavailable), String(down.error)).toBe(true);
    expect(down.ms).toBeLessThan(3000);

    await h.server({ port }, (s) => s.handle('quick', () => 'back'));
    await client.waitConnected(5000);
    await expect(client.call('quick')).resolves.toBe('back');
  });
});
