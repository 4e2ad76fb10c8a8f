import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import type { ScramMechanism } from '@robustmq/core';

/** SCRAM keys as stored with a user (base64), one entry per mechanism. */
export interface StoredScramCredential {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

export const SCRAM_MECHANISMS: readonly ScramMechanism[] = ['SCRAM-SHA-256', 'SCRAM-SHA-512'];

// Kafka's default and the RFC 7677 minimum is 4096.
const ITERATIONS = 4096;

const digestOf = (mechanism: ScramMechanism) => (mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512');

/** Derives StoredKey and ServerKey (RFC 5802 section 3) from a password with a fresh salt. */
export async function deriveScramCredential(
  password: string,
  mechanism: ScramMechanism,
): Promise<StoredScramCredential> {
  const digest = digestOf(mechanism);
  const salt = randomBytes(24);
  const length = createHash(digest).digest().length;
  const saltedPassword = await new Promise<Buffer>((resolve, reject) =>
    pbkdf2(Buffer.from(password, 'utf8'), salt, ITERATIONS, length, digest, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
  const clientKey = createHmac(digest, saltedPassword).update('Client Key').digest();
  return {
    salt: salt.toString('base64'),
    iterations: ITERATIONS,
    storedKey: createHash(digest).update(clientKey).digest('base64'),
    serverKey: createHmac(digest, saltedPassword).update('Server Key').digest('base64'),
  };
}
