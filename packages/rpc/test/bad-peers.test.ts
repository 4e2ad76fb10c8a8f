import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameKind, PREAMBLE } from '../src/frame.js';
import { Harness, recordingLogger, recordingMetrics, sleep, waitFor } from './helpers.js';

const h = new Harness();
const rawSockets: Socket[] = [];
const rawServers: Server[] = [];
afterEach(async () => {
  for (const socket of rawSockets.splice(0)) socket.destroy();
  for (const server of rawServers.splice(0)) server.close();
  await h.closeAll();
});

async function rawPeer(port: number): Promise<Socket & { closedByServer: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port });
  rawSockets.push(socket);
  socket.on('error', () => {});
  // Read (and drop) what the server sends, so its closing the connection is seen.
  socket.resume();
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const closedByServer = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return Object.assign(socket, { closedByServer });
}

async function echoServer(logger = recordingLogger(), extra: Parameters<Harness['server']>[0] = {}) {
  const server = await h.server({ logger, ...extra }, (s) => s.handle<number, number>('echo', (n) => n));
  return { server, logger };
}

describe('peers that break the rules', () => {
  it('logs and closes a connection that sends garbage; other clients are untouched', async () => {
    const metrics = recordingMetrics();
    const { server, logger } = await echoServer(recordingLogger(), { metrics });
    const good = h.client(server.port);
    await expect(good.call('echo', 1)).resolves.toBe(1);

    const garbage = await rawPeer(server.port);
    garbage.write(randomBytes(4096));
    await garbage.closedByServer;
    expect(logger.lines.some((l) => l.level === 'warn' && l.message.includes('protocol error'))).toBe(true);

    // A peer with the right preamble but a nonsense frame fares the same.
    const header = Buffer.alloc(24);
    header.writeUInt32BE(20, 0);
    header.writeUInt8(200, 4);
    const liar = await rawPeer(server.port);
    liar.write(Buffer.concat([PREAMBLE, header]));
    await liar.closedByServer;

    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => good.call<number>('echo', i)));
    expect(results[49]).toBe(49);
    await waitFor(() => server.connectionCount === 1, 5000, 'only the good client to remain');
    expect(metrics.value('robustmq_rpc_server_protocol_errors_total')).toBe(2);
    expect(metrics.value('robustmq_rpc_server_connections')).toBe(1);
    expect(metrics.value('robustmq_rpc_server_calls_total', { method: 'echo', outcome: 'OK' })).toBe(51);
  });

  it('closes a connection announcing a frame above the maximum without waiting for it', async () => {
    const { server, logger } = await echoServer(recordingLogger(), { maxFrameBytes: 1024 * 1024 });
    const good = h.client(server.port);
    const peer = await rawPeer(server.port);
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(0xfffffff0, 0);
    peer.write(Buffer.concat([PREAMBLE, prefix, Buffer.alloc(100)]));
    await peer.closedByServer;
    const line = logger.lines.find(
      (l) => l.level === 'warn' && String(l.fields.reason).includes('exceeds the maximum'),
    );
    expect(line).toBeDefined();
    await expect(good.call('echo', 7)).resolves.toBe(7);
  });

  it('stops writing to a peer that stops reading, holds bounded memory for it, and serves others', async () => {
    const blob = new Uint8Array(1024 * 1024).fill(1);
    let served = 0;
    const maxConcurrentCalls = 8;
    const server = await h.server({ maxConcurrentCalls }, (s) => {
      s.handle('blob', () => {
        served++;
        return blob;
      });
      s.handle<number, number>('echo', (n) => n);
    });

    const sluggard = await rawPeer(server.port);
    sluggard.pause();
    const requests = Array.from({ length: 2000 }, (_, i) =>
      Buffer.concat(encodeFrame({ kind: FrameKind.Request, callId: i + 1, method: 'blob' }, 1024).parts),
    );
    sluggard.write(Buffer.concat([PREAMBLE, ...requests]));

    // Let the server run until it stalls on the full socket.
    let last = -1;
    while (served !== last) {
      last = served;
      await sleep(300);
    }
    expect(served).toBeGreaterThan(0);
    expect(served).toBeLessThan(200);
    const buffered = Math.max(...server.bufferedWriteBytes());
    expect(buffered).toBeLessThanOrEqual((maxConcurrentCalls + 1) * (blob.byteLength + 64));

    // Everyone else is served meanwhile, big replies included.
    const good = h.client(server.port);
    await expect(good.call('echo', 5)).resolves.toBe(5);
    const reply = await good.call<Uint8Array>('blob');
    expect(reply.byteLength).toBe(blob.byteLength);
    expect(served).toBeLessThan(200);

    sluggard.destroy();
    await waitFor(() => server.connectionCount === 1, 5000, 'the sluggard connection to be dropped');
    await expect(good.call('echo', 6)).resolves.toBe(6);
  });
});

describe('servers that are not RPC servers', () => {
  /** A TCP server whose accepted sockets get `onSocket`. */
  async function tcpServer(onSocket: (socket: Socket) => void): Promise<number> {
    const server = createServer((socket) => {
      rawSockets.push(socket);
      socket.on('error', () => {});
      onSocket(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    rawServers.push(server);
    return (server.address() as { port: number }).port;
  }

  it('does not count a server that never answers as connected, and says so', async () => {
    const port = await tcpServer(() => {});
    const logger = recordingLogger();
    const client = h.client(port, { connectTimeoutMs: 100, reconnectDelayMs: 20, logger });
    await expect(client.waitConnected(400)).rejects.toThrow(/not connected within 400 ms/);
    expect(client.connected).toBe(false);
    const failure = logger.lines.find((l) => l.message === 'rpc connect failed, retrying');
    expect(String(failure?.fields.err)).toMatch(/timed out after 100 ms/);
  });

  it('does not count a server that speaks something else as connected', async () => {
    const port = await tcpServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const logger = recordingLogger();
    const client = h.client(port, { reconnectDelayMs: 20, logger });
    await expect(client.waitConnected(300)).rejects.toThrow(/not connected/);
    expect(logger.lines.some((l) => l.message === 'rpc connected')).toBe(false);
    expect(logger.lines.some((l) => l.message === 'rpc connect failed, retrying')).toBe(true);
  });
});
