import { mutualTls, type MutualTls } from '@robustmq/rpc';
import type { NodeConfig } from '../config/schema.js';
import { checkTlsFiles, readTlsFile } from '../tls-files.js';

/**
 * The TLS of the internal RPC port from `[rpc]`: this node's certificate and key and the cluster's
 * CA, read once at start-up. Null when the section sets none (plain TCP).
 */
export function readNodeCertificate(rpc: NodeConfig['rpc']): MutualTls | null {
  if (rpc.tls_cert === undefined || rpc.tls_key === undefined || rpc.tls_ca === undefined) return null;
  const pems = {
    cert: readTlsFile(rpc.tls_cert, 'rpc.tls_cert'),
    key: readTlsFile(rpc.tls_key, 'rpc.tls_key'),
    ca: readTlsFile(rpc.tls_ca, 'rpc.tls_ca'),
  };
  checkTlsFiles(pems, 'rpc.tls_cert, rpc.tls_key, rpc.tls_ca');
  return mutualTls(pems);
}
