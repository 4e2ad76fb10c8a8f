import { randomBytes } from 'node:crypto';
import { generate } from 'selfsigned';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { Harness, recordingLogger, rejectionOf, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.closeAll());

let pems: { cert: string; key: string };

beforeAll(async () => {
  const generated = await generate([{ name: 'commonName', value: 'robustmq-test' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 2, value: 'localhost' },
        ],
      },
    ],
  });
  pems = { cert: generated.cert, key: generated.private };
}, 30_000);

describe('TLS', () => {
  it('serves calls and streams over TLS to a client that trusts the certificate', async () => {
    const server = await h.server({ tls: { cert: pems.cert, key: pems.key } }, (s) => {
      s.handle<Uint8Array, Uint8Array>('mirror', (data) => data);
      s.handleStream<number, number>('count', function* (n) {
        for (let i = 0; i < n; i++) yield i;
      });
    });
    const client = h.client(server.port, { tls: { ca: pems.cert } });
    const data = new Uint8Array(randomBytes(4 * 1024 * 1024 + 3));
    const reply = await client.call<Uint8Array>('mirror', data);
    expect(Buffer.compare(reply, data)).toBe(0);
    const items: number[] = [];
    for await (const item of client.stream<number>('count', 100)) items.push(item);
    expect(items).toHaveLength(100);
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.call<Uint8Array>('mirror', new Uint8Array([i]))),
    );
    expect(many[199]).toEqual(new Uint8Array([199]));
  });

  it('does not connect a client that does not trust the certificate', async () => {
    const logger = recordingLogger();
    const server = await h.server({ tls: { cert: pems.cert, key: pems.key }, logger }, (s) =>
      s.handle('m', () => 'ok'),
    );
    const client = h.client(server.port, { tls: true, reconnectDelayMs: 20 });
    const error = await rejectionOf(client.call('m', undefined, { deadlineMs: 300 }));
    expect(isRobustMQError(error, ErrorCode.Unavailable)).toBe(true);
    expect(client.connected).toBe(false);
    await waitFor(
      () => logger.lines.some((l) => l.message.includes('TLS handshake failed')),
      5000,
      'the server log line',
    );
  });

  it('does not connect a plain TCP client to a TLS server', async () => {
    const server = await h.server({ tls: { cert: pems.cert, key: pems.key } }, (s) =>
      s.handle('m', () => 'ok'),
    );
    const logger = recordingLogger();
    const client = h.client(server.port, { reconnectDelayMs: 20, logger });
    // The TCP connection opens, but the server never answers as an RPC server: not connected.
    expect(isRobustMQError(await rejectionOf(client.waitConnected(500)), ErrorCode.Unavailable)).toBe(true);
    const error = await rejectionOf(client.call('m', undefined, { deadlineMs: 300 }));
    expect(isRobustMQError(error, ErrorCode.Unavailable)).toBe(true);
    expect(logger.lines.some((l) => l.message === 'rpc connected')).toBe(false);
    expect(logger.lines.some((l) => l.message === 'rpc connect failed, retrying')).toBe(true);
  });
});
