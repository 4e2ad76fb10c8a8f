import type { ConfigError } from '@robustmq/core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import plugin from '../src/index.js';
import { parseSettings } from '../src/config.js';
import { run } from './helpers/processes.js';
import { TestClient } from './helpers/rhea-client.js';
import { startServer, type AmqpServer } from './helpers/server.js';

const PROTON = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures/proton_client.py');

function configError(section: Record<string, unknown>): ConfigError {
  try {
    parseSettings(section);
  } catch (e) {
    return e as ConfigError;
  }
  throw new Error('no error');
}

describe('[amqp] settings', () => {
  it('opens only TCP on 5672 by default', () => {
    expect(parseSettings({})).toMatchObject({
      port: 5672,
      tlsPort: 5671,
      listeners: ['tcp'],
      allowAnonymous: true,
      queuePrefix: 'queue://',
      topicPrefix: 'topic://',
      defaultAddressKind: 'queue',
      autoCreate: true,
      tls: undefined,
    });
    expect(plugin.create({}).listeners()).toEqual([{ name: 'tcp', port: 5672, transport: 'tcp' }]);
  });

  it('bounds queue memory by bytes and the handshake by time', () => {
    expect(parseSettings({})).toMatchObject({ queueMemoryBytes: 67_108_864, handshakeTimeoutMs: 10_000 });
    expect(parseSettings({ queue_memory_bytes: 1_048_576, handshake_timeout_ms: 2000 })).toMatchObject({
      queueMemoryBytes: 1_048_576,
      handshakeTimeoutMs: 2000,
    });
    expect(configError({ queue_memory_bytes: 1000 }).setting).toBe('queue_memory_bytes');
    expect(configError({ handshake_timeout_ms: 0 }).setting).toBe('handshake_timeout_ms');
  });

  it('builds the TLS listener with its PEM files', () => {
    const listeners = plugin
      .create({
        listeners: ['tcp', 'tls'],
        port: 1,
        tls_port: 2,
        tls_cert: '/c.pem',
        tls_key: '/k.pem',
        host: '::1',
      })
      .listeners();
    expect(listeners).toEqual([
      { name: 'tcp', port: 1, transport: 'tcp', host: '::1' },
      { name: 'tls', port: 2, transport: 'tls', host: '::1', tls: { cert: '/c.pem', key: '/k.pem' } },
    ]);
  });

  it('names the setting that is wrong', () => {
    expect(configError({ nope: 1 }).message).toBe('nope: unknown setting');
    expect(configError({ port: 70000 }).setting).toBe('port');
    expect(configError({ listeners: ['tls'] }).message).toBe('listeners: "tls" needs tls_cert and tls_key');
    expect(configError({ tls_cert: '/c.pem' }).setting).toBe('tls_cert');
    expect(configError({ queue_prefix: 'x', topic_prefix: 'x' }).setting).toBe('topic_prefix');
    expect(configError({ default_address_kind: 'fanout' }).setting).toBe('default_address_kind');
  });
});

describe('AMQPS and SASL on the server', { timeout: 30_000 }, () => {
  let dir: string;
  let ca: string;
  let server: AmqpServer;

  beforeAll(async () => {
    const generated = await generate([{ name: 'commonName', value: 'robustmq-test' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
      ],
    });
    dir = mkdtempSync(join(tmpdir(), 'robustmq-amqp-tls-'));
    ca = join(dir, 'cert.pem');
    writeFileSync(ca, generated.cert);
    writeFileSync(join(dir, 'key.pem'), generated.private);
    server = await startServer({
      amqp: [
        'listeners = ["tcp", "tls"]',
        `tls_cert = ${JSON.stringify(ca)}`,
        `tls_key = ${JSON.stringify(join(dir, 'key.pem'))}`,
        'allow_anonymous = false',
      ],
      extra: ['[admin]', 'password = "admin-pw"'],
    });
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves rhea over TLS, verifying the self-signed certificate', async () => {
    const client = await TestClient.connect(server.tlsPort!, {
      transport: 'tls',
      ca: [readFileSync(ca)],
      servername: '127.0.0.1',
      username: 'admin',
      password: 'admin-pw',
    });
    const sender = await client.sender('queue://secure');
    expect((await sender.send({ body: 'over tls' })).outcome).toBe('accepted');
    const receiver = await client.receiver('queue://secure');
    await receiver.waitFor(1);
    expect(receiver.bodies()).toEqual(['over tls']);
    await client.close();
    await server.waitForMetric(/robustmq_amqp_connections\{listener="tls"[^}]*\} 0/);
  });

  it('serves Qpid Proton over TLS', async () => {
    const url = `amqps://127.0.0.1:${server.tlsPort}`;
    const args = ['--tls', '--ca', ca, '--user', 'admin', '--password', 'admin-pw'];
    const sent = await run('/usr/bin/python3', [PROTON, 'send', url, 'queue://proton-tls', ...args], 20_000);
    expect(sent.stderr).toBe('');
    const got = await run(
      '/usr/bin/python3',
      [PROTON, 'receive', url, 'queue://proton-tls', ...args],
      20_000,
    );
    expect(got.stdout).toContain('"body": "msg-0"');
  });

  it('refuses anonymous clients when allow_anonymous is off', async () => {
    await expect(TestClient.connect(server.port)).rejects.toThrow();
    await expect(TestClient.connect(server.port, { username: 'anonymous' })).rejects.toThrow();
  });
});
