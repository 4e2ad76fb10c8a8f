import type { ConnectionOptions, TlsOptions } from 'node:tls';

/** PEM contents (or Buffers) of a node's certificate, its key, and the CA that signs every node's. */
export interface NodeCertificate {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

/** Both sides of the internal port's TLS: what a node serves with, and what it connects with. */
export interface MutualTls {
  server: TlsOptions;
  client: ConnectionOptions;
}

/**
 * TLS in which each side shows its certificate and takes the other's only if the CA signed it: the
 * internal port then answers nodes of the cluster and nobody else. A client also checks that the
 * server's certificate names the host or IP address it connected to.
 */
export function mutualTls({ cert, key, ca }: NodeCertificate): MutualTls {
  return {
    server: { cert, key, ca, requestCert: true, rejectUnauthorized: true },
    client: { cert, key, ca, rejectUnauthorized: true },
  };
}
