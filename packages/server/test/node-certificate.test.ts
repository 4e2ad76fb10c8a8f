import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNodeCertificate } from '../src/cluster/node-certificate.js';
import { StartupError } from '../src/startup-error.js';
import { tempDir } from './helpers/server-process.js';

const dir = tempDir('node-certificate');
afterAll(() => dir.remove());
const file = (name: string) => join(dir.path, name);

beforeAll(async () => {
  const make = () =>
    generate([{ name: 'commonName', value: 'node' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [{ name: 'basicConstraints', cA: true }],
    });
  const [node, other] = await Promise.all([make(), make()]);
  writeFileSync(file('node.pem'), node.cert);
  writeFileSync(file('node-key.pem'), node.private);
  writeFileSync(file('other-key.pem'), other.private);
}, 30_000);

const rpc = (cert: string, key: string, ca: string) => ({
  port: 1228,
  tls_cert: file(cert),
  tls_key: file(key),
  tls_ca: file(ca),
});

describe('readNodeCertificate', () => {
  it('is null without TLS settings', () => {
    expect(readNodeCertificate({ port: 1228 })).toBeNull();
  });

  it('gives both sides mutual TLS from the files', () => {
    const tls = readNodeCertificate(rpc('node.pem', 'node-key.pem', 'node.pem'))!;
    expect(tls.server).toMatchObject({ requestCert: true, rejectUnauthorized: true });
    expect(String(tls.client.cert)).toContain('BEGIN CERTIFICATE');
  });

  it('stops the start at a file it cannot read, naming the setting', () => {
    expect(() => readNodeCertificate(rpc('node.pem', 'node-key.pem', 'missing.pem'))).toThrow(
      new StartupError(`rpc.tls_ca: cannot read ${file('missing.pem')}: ENOENT`),
    );
  });

  it("stops the start at a key that is not the certificate's", () => {
    expect(() => readNodeCertificate(rpc('node.pem', 'other-key.pem', 'node.pem'))).toThrow(
      /rpc.tls_cert, rpc.tls_key, rpc.tls_ca: not a usable certificate and key: .*key values mismatch/,
    );
  });

  it('stops the start at a file that is not PEM', () => {
    writeFileSync(file('garbage.pem'), 'not a certificate');
    expect(() => readNodeCertificate(rpc('garbage.pem', 'node-key.pem', 'node.pem'))).toThrow(StartupError);
  });
});
