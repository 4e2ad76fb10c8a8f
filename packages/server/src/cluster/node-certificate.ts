import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { mutualTls, type MutualTls } from '@robustmq/rpc';
import type { NodeConfig } from '../config/schema.js';
import { StartupError } from '../startup-error.js';

/**
 * The TLS of the internal RPC port from `[rpc]`: this node's certificate and key and the cluster's
 * CA, read once at start-up. Null when the section sets none (plain TCP).
 */
export function readNodeCertificate(rpc: NodeConfig['rpc']): MutualTls | null {
  if (rpc.tls_cert === undefined || rpc.tls_key === undefined || rpc.tls_ca === undefined) return null;
  const read = (file: string, setting: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new StartupError(
        `rpc.${setting}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  };
  const pems = {
    cert: read(rpc.tls_cert, 'tls_cert'),
    key: read(rpc.tls_key, 'tls_key'),
    ca: read(rpc.tls_ca, 'tls_ca'),
  };
  try {
    // Checked here so that a key that does not match its certificate stops the start, rather than
    // failing each connection later.
    createSecureContext(pems);
  } catch (error) {
    throw new StartupError(
      `rpc: tls_cert, tls_key and tls_ca are not a usable certificate, key and CA: ${(error as Error).message}`,
    );
  }
  return mutualTls(pems);
}
