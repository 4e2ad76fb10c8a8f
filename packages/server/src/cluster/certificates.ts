import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { StartupError } from '../startup-error.js';

/** The CA's files in a certificates directory. */
export const CA_CERT = 'ca.pem';
export const CA_KEY = 'ca-key.pem';

const YEAR_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * Makes the cluster's CA in `dir`: `ca.pem` (every node's `rpc.tls_ca`) and `ca-key.pem`, which
 * signs the nodes' certificates and belongs on no node. Refuses to replace an existing CA.
 */
export async function createClusterCa(dir: string, years = 10): Promise<string[]> {
  const files = [join(dir, CA_CERT), join(dir, CA_KEY)];
  refuseToReplace(files);
  const now = new Date();
  const ca = await generate([{ name: 'commonName', value: 'RobustMQ cluster CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + years * YEAR_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  writeFileSync(files[0]!, ca.cert, { flag: 'wx' });
  writeFileSync(files[1]!, ca.private, { flag: 'wx', mode: 0o600 });
  return files;
}

/**
 * Makes a node's certificate and key in `dir`, `<name>.pem` and `<name>-key.pem`, signed by the CA
 * there, for the host names and IP addresses other nodes reach it by.
 */
export async function createNodeCertificate(
  dir: string,
  name: string,
  hosts: readonly string[],
  years = 2,
): Promise<string[]> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new StartupError(`--name must be letters, digits, ".", "_" or "-", got ${JSON.stringify(name)}`);
  }
  if (hosts.length === 0) {
    throw new StartupError(
      'name at least one --host: an address or host name other nodes reach this node by',
    );
  }
  const ca = readCa(dir);
  const files = [join(dir, `${name}.pem`), join(dir, `${name}-key.pem`)];
  refuseToReplace(files);
  const now = new Date();
  const node = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + years * YEAR_MS),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      // Each node is a TLS server to the nodes that call it and a client of those it calls.
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: hosts.map((host) => (isIP(host) === 0 ? { type: 2, value: host } : { type: 7, ip: host })),
      },
    ],
  });
  writeFileSync(files[0]!, node.cert, { flag: 'wx' });
  writeFileSync(files[1]!, node.private, { flag: 'wx', mode: 0o600 });
  return files;
}

function readCa(dir: string): { cert: string; key: string } {
  try {
    return {
      cert: readFileSync(join(dir, CA_CERT), 'utf8'),
      key: readFileSync(join(dir, CA_KEY), 'utf8'),
    };
  } catch (error) {
    throw new StartupError(
      `no CA in ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)}): make one first with "robustmq-server certs ca --dir ${dir}"`,
    );
  }
}

function refuseToReplace(files: readonly string[]): void {
  for (const file of files) {
    if (existsSync(file)) throw new StartupError(`${file} exists; not replacing it`);
  }
}
