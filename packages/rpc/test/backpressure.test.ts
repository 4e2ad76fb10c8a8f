import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, silentLogger } from '@robustmq/core';
import { FramedConnection } from '../src/connection.js';
import { encodeFrame, FrameKind, PREAMBLE } from '../src/frame.js';
import { Harness, rejectionOf, waitFor } from './helpers.js';

const h = new Harness();
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await h.closeAll();
});

/** A TCP server whose accepted sockets are handed to the test and cleaned up after it. */
async function rawServer(onSocket: (socket: Socket) => void): Promise<number> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

describe('writes', () => {
  it('coalesces the frames queued in one tick into one socket write', async () => {
    let received = 0;
    const port = await rawServer((socket) =>
      socket.on('data', (chunk: Buffer) => (received += chunk.byteLength)),
    );
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    cleanups.push(() => socket.destroy());
    await new Promise<void>((resolve) => socket.write(Buffer.alloc(0), () => resolve()));

    const writes: number[] = [];
    const internals = socket as unknown as { _writev: (chunks: unknown[], cb: () => void) => void };
    const original = internals._writev.bind(socket);
    internals._writev = (chunks, cb) => {
      writes.push(chunks.length);
      original(chunks, cb);
    };
    const conn = new FramedConnection(socket, {
      maxFrameBytes: 1 << 20,
      logger: silentLogger,
      onFrame: () => {},
      onClose: () => {},
    });
    let bytes = 8; // the preamble, written before the frames
    for (let i = 1; i <= 200; i++) {
      const frame = encodeFrame({ kind: FrameKind.Request, callId: i, method: 'echo', body: i }, 1 << 20);
      bytes += frame.byteLength;
      conn.send(frame);
    }
    await waitFor(() => received === bytes, 5000, 'the frames to arrive');
    // One vectored write carried all 200 frames (and the preamble, had it still been queued).
    expect(writes).toHaveLength(1);
    expect(writes[0]).toBeGreaterThanOrEqual(200);
  });

  it('keeps calls queued in the client, not in the socket buffer, while the server does not read', async () => {
    // A server that answers (its preamble) and then stops reading.
    const port = await rawServer((socket) => {
      socket.write(PREAMBLE);
      socket.pause();
    });
    const client = h.client(port);
    await client.waitConnected(5000);
    const body = new Uint8Array(1024 * 1024);
    const calls = Array.from({ length: 64 }, () =>
      rejectionOf(client.call('put', body, { deadlineMs: 1000 })),
    );
    // The first megabytes fill the kernel buffers; from then on write() says "full" and the client waits.
    await waitFor(() => client.queued > 0, 5000, 'the client to hold calls back');
    const queued = client.queued;
    expect(queued).toBeGreaterThan(32);
    expect(client.inFlight + queued).toBe(64);
    for (const error of await Promise.all(calls)) {
      expect(isRobustMQError(error, ErrorCode.Timeout)).toBe(true);
    }
    expect(client.queued).toBe(0);
  });
});
