import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRpc, createRpcServer } from '@robustmq/rpc';
import { readNodeCertificate } from '../src/cluster/node-certificate.js';
import { runServer, tempDir } from './helpers/server-process.js';

const dir = tempDir('certs');
afterAll(() => dir.remove());

const certs = (...args: string[]) => runServer({ args: ['certs', ...args] });

describe('robustmq-server certs', () => {
  it('makes a CA and node certificates that connect two nodes over mutual TLS', async () => {
    const ca = await certs('ca', '--dir', join(dir.path, 'cluster'));
    expect(ca.code).toBe(0);
    expect(ca.stdout).toContain(`wrote ${join(dir.path, 'cluster', 'ca.pem')}`);
    for (const name of ['node-1', 'node-2']) {
      const node = await certs(
        'node',
        '--dir',
        join(dir.path, 'cluster'),
        '--name',
        name,
        '--host',
        '127.0.0.1',
        '--host',
        `${name}.internal`,
      );
      expect(node.code).toBe(0);
    }
    // Keys are for their owner only.
    expect(statSync(join(dir.path, 'cluster', 'ca-key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir.path, 'cluster', 'node-1-key.pem')).mode & 0o777).toBe(0o600);

    const tlsOf = (name: string) =>
      readNodeCertificate({
        port: 0,
        tls_cert: join(dir.path, 'cluster', `${name}.pem`),
        tls_key: join(dir.path, 'cluster', `${name}-key.pem`),
        tls_ca: join(dir.path, 'cluster', 'ca.pem'),
      })!;
    const server = createRpcServer({ host: '127.0.0.1', port: 0, tls: tlsOf('node-1').server });
    server.handle<string, string>('hello', (who) => `hello ${who}`);
    await server.listen();
    const client = connectRpc({ host: '127.0.0.1', port: server.port, tls: tlsOf('node-2').client });
    try {
      expect(await client.call('hello', 'node-2')).toBe('hello node-2');
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('names the hosts given in the certificate', async () => {
    const made = await certs(
      'node',
      '--dir',
      join(dir.path, 'cluster'),
      '--name',
      'node-3',
      '--host',
      '10.1.2.3',
      '--host',
      'broker-3.example',
    );
    expect(made.code).toBe(0);
    const cert = new X509Certificate(readFileSync(join(dir.path, 'cluster', 'node-3.pem')));
    expect(cert.subjectAltName).toBe('IP Address:10.1.2.3, DNS:broker-3.example');
    expect(cert.checkIssued(new X509Certificate(readFileSync(join(dir.path, 'cluster', 'ca.pem'))))).toBe(
      true,
    );
  });

  it('refuses to replace files, to sign without a CA, and a node without a host', async () => {
    const again = await certs('ca', '--dir', join(dir.path, 'cluster'));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/ca\.pem exists; not replacing it/);
    const noCa = await certs('node', '--dir', join(dir.path, 'empty'), '--name', 'n', '--host', '127.0.0.1');
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toContain('no CA in');
    const noHost = await certs('node', '--dir', join(dir.path, 'cluster'), '--name', 'n');
    expect(noHost.code).toBe(1);
    expect(noHost.stderr).toContain('name at least one --host');
    const sameName = await certs(
      'node',
      '--dir',
      join(dir.path, 'cluster'),
      '--name',
      'node-1',
      '--host',
      '127.0.0.1',
    );
    expect(sameName.code).toBe(1);
    expect(sameName.stderr).toMatch(/node-1\.pem exists/);
  });
});
