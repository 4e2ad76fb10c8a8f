import { X509Certificate } from 'node:crypto';
import { connect as connectTls } from 'node:tls';
import { generate } from 'selfsigned';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mutualTls, type NodeCertificate } from '../src/index.js';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { Harness, recordingLogger, rejectionOf, waitFor } from './helpers.js';

const h = new Harness();
afterEach(() => h.closeAll());

/** A CA and a node certificate it signed for 127.0.0.1. */
async function authority(
  name: string,
): Promise<{ ca: { cert: string; key: string }; node: NodeCertificate }> {
  const ca = await generate([{ name: 'commonName', value: `${name} CA` }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true },
    ],
  });
  const node = await nodeSignedBy({ cert: ca.cert, key: ca.private }, `${name} node`);
  return { ca: { cert: ca.cert, key: ca.private }, node };
}

async function nodeSignedBy(ca: { cert: string; key: string }, name: string): Promise<NodeCertificate> {
  const node = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  });
  return { cert: node.cert, key: node.private, ca: ca.cert };
}

let cluster: Awaited<ReturnType<typeof authority>>;
let stranger: Awaited<ReturnType<typeof authority>>;

beforeAll(async () => {
  cluster = await authority('cluster');
  stranger = await authority('stranger');
}, 30_000);

describe('mutual TLS', () => {
  it('connects two nodes whose certificates the same CA signed', async () => {
    const server = await h.server({ tls: mutualTls(cluster.node).server }, (s) =>
      s.handle<string, string>('echo', (text) => text),
    );
    const other = await nodeSignedBy(cluster.ca, 'cluster node 2');
    const client = h.client(server.port, { tls: mutualTls(other).client });
    expect(await client.call('echo', 'hello')).toBe('hello');
  });

  it('refuses a client that shows no certificate, and logs it', async () => {
    const logger = recordingLogger();
    const server = await h.server({ tls: mutualTls(cluster.node).server, logger }, (s) =>
      s.handle('m', () => 'ok'),
    );
    const clientLogger = recordingLogger();
    const client = h.client(server.port, {
      tls: { ca: cluster.node.ca },
      reconnectDelayMs: 20,
      logger: clientLogger,
    });
    expect(isRobustMQError(await rejectionOf(client.waitConnected(500)), ErrorCode.Unavailable)).toBe(true);
    await rejectionOf(client.call('m', undefined, { deadlineMs: 500 }));
    // The client says why: the server asked for a certificate it did not get.
    const failure = clientLogger.lines.find((l) => l.message === 'rpc connect failed, retrying');
    expect(String(failure?.fields.err)).toMatch(/certificate/i);
    await waitFor(
      () => logger.lines.some((l) => l.message.includes('TLS handshake failed')),
      5000,
      'the server log line',
    );
  });

  it('refuses a client whose certificate another CA signed', async () => {
    const logger = recordingLogger();
    const server = await h.server({ tls: mutualTls(cluster.node).server, logger }, (s) =>
      s.handle('m', () => 'ok'),
    );
    const impostor = { ...stranger.node, ca: cluster.node.ca };
    const client = h.client(server.port, { tls: mutualTls(impostor).client, reconnectDelayMs: 20 });
    await rejectionOf(client.call('m', undefined, { deadlineMs: 500 }));
    await waitFor(
      () => logger.lines.some((l) => l.message.includes('TLS handshake failed')),
      5000,
      'the server log line',
    );
  });

  it('does not call a server whose certificate another CA signed', async () => {
    let served = 0;
    const server = await h.server({ tls: mutualTls({ ...stranger.node, ca: cluster.node.ca }).server }, (s) =>
      s.handle('m', () => {
        served++;
        return 'ok';
      }),
    );
    const client = h.client(server.port, { tls: mutualTls(cluster.node).client, reconnectDelayMs: 20 });
    await rejectionOf(client.call('m', undefined, { deadlineMs: 500 }));
    expect(client.connected).toBe(false);
    expect(served).toBe(0);
  });

  it('serves a renewed certificate to the connections made after setTls', async () => {
    const renewed = await nodeSignedBy(cluster.ca, 'cluster node, renewed');
    const server = await h.server({ tls: mutualTls(cluster.node).server }, (s) => s.handle('m', () => 'ok'));
    const client = h.client(server.port, { tls: mutualTls(renewed).client });
    expect(await client.call('m')).toBe('ok');
    const shown = () =>
      new Promise<string>((resolve, reject) => {
        const socket = connectTls(
          { host: '127.0.0.1', port: server.port, ...mutualTls(renewed).client },
          () => {
            resolve(socket.getPeerX509Certificate()!.fingerprint256);
            socket.destroy();
          },
        );
        socket.on('error', reject);
      });
    expect(await shown()).toBe(new X509Certificate(cluster.node.cert).fingerprint256);
    server.setTls(mutualTls(renewed).server);
    expect(await shown()).toBe(new X509Certificate(renewed.cert).fingerprint256);
    // The connection made before keeps working.
    expect(await client.call('m')).toBe('ok');
  });
});
