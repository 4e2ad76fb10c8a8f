import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { Harness, recordingLogger, rejectionOf, sleep, waitFor } from './helpers.js';

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

describe('reconnection', () => {
  it('reconnects after the server restarts; calls made meanwhile wait for it', async () => {
    const first = await h.server({}, (s) => s.handle('who', () => 'first'));
    const port = first.port;
    const client = h.client(port, { reconnectDelayMs: 20, maxReconnectDelayMs: 100 });
    await expect(client.call('who')).resolves.toBe('first');

    await first.close();
    await waitFor(() => !client.connected, 5000, 'the client to notice');
    const waiting = client.call('who', undefined, { deadlineMs: 10_000 });
    await sleep(300);
    expect(client.queued).toBe(1);

    await h.server({ port }, (s) => s.handle('who', () => 'second'));
    await expect(waiting).resolves.toBe('second');
    expect(client.connected).toBe(true);
  });

  it('fails calls in flight when the connection drops with UNAVAILABLE, and never resends them', async () => {
    let runs = 0;
    const first = await h.server({}, (s) =>
      s.handle('append', () => {
        runs++;
        return new Promise(() => {});
      }),
    );
    const port = first.port;
    const client = h.client(port, { reconnectDelayMs: 20, maxReconnectDelayMs: 100 });
    const pending = Array.from({ length: 5 }, () => rejectionOf(client.call('append', { record: 'r' })));
    await waitFor(() => runs === 5, 5000, 'the calls to reach the server');
    await first.close();
    for (const error of await Promise.all(pending)) {
      expect(isRobustMQError(error, ErrorCode.Unavailable)).toBe(true);
    }
    expect(client.inFlight).toBe(0);

    let secondRuns = 0;
    await h.server({ port }, (s) =>
      s.handle('append', () => {
        secondRuns++;
        return 'ok';
      }),
    );
    await client.waitConnected(5000);
    await expect(client.call('append')).resolves.toBe('ok');
    expect(secondRuns).toBe(1);
  });

  it('fails an open stream UNAVAILABLE when the connection drops', async () => {
    const server = await h.server({}, (s) =>
      s.handleStream('watch', async function* (_body, ctx) {
        yield 'event';
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      }),
    );
    const client = h.client(server.port);
    const got: unknown[] = [];
    const outcome = rejectionOf(
      (async () => {
        for await (const item of client.stream('watch')) got.push(item);
      })(),
    );
    await waitFor(() => got.length === 1, 5000, 'the first event');
    await server.close();
    expect(isRobustMQError(await outcome, ErrorCode.Unavailable)).toBe(true);
  });

  it('fails a call UNAVAILABLE when no server comes up before its deadline', async () => {
    const client = h.client(await freePort(), { reconnectDelayMs: 10, maxReconnectDelayMs: 50 });
    const error = await rejectionOf(client.call('anything', { x: 1 }, { deadlineMs: 200 }));
    expect(isRobustMQError(error, ErrorCode.Unavailable)).toBe(true);
    expect((error as Error).message).toContain('was not sent');
    expect(isRobustMQError(await rejectionOf(client.waitConnected(50)), ErrorCode.Unavailable)).toBe(true);
    expect(client.queued).toBe(0);
  });

  it('keeps warning, ever more rarely, while the server stays down, and says how long it was gone', async () => {
    const first = await h.server({}, (s) => s.handle('who', () => 'first'));
    const port = first.port;
    const logger = recordingLogger();
    const client = h.client(port, { reconnectDelayMs: 2, maxReconnectDelayMs: 4, logger });
    await client.waitConnected(5000);
    await first.close();
    const warnings = () => logger.lines.filter((line) => line.level === 'warn');
    // Attempts 8, 16 and 32 fail within a fraction of a second at these delays.
    await waitFor(() => warnings().length >= 4, 3000, 'warnings while the server is down');
    const [lost, ...reminders] = warnings();
    expect(lost!.message).toBe('rpc connection lost, reconnecting');
    expect(reminders.slice(0, 3).map((line) => line.fields.attempt)).toEqual([8, 16, 32]);
    for (const line of reminders) {
      expect(line.message).toBe('rpc server still unreachable, retrying');
      expect(line.fields.downForMs).toBeGreaterThanOrEqual(0);
    }
    await sleep(100);
    // The remaining failed attempts are logged at debug only: warnings grow with the log of their count.
    const failed = logger.lines.filter((line) => typeof line.fields.attempt === 'number' && line.fields.err);
    expect(warnings().length - 1).toBeLessThanOrEqual(Math.log2(failed.length));

    await h.server({ port }, (s) => s.handle('who', () => 'second'));
    await client.waitConnected(5000);
    const back = logger.lines.filter((line) => line.message === 'rpc connected').at(-1);
    expect(back?.fields.downForMs).toBeGreaterThanOrEqual(100);
    await expect(client.call('who')).resolves.toBe('second');
  });
});
