import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { ScramCredential } from '@robustmq/core';

/** What the user store would keep for `password` (RFC 5802 section 3). */
export function scramCredentialOf(password: string, digest: 'sha256' | 'sha512'): ScramCredential {
  const salt = randomBytes(16);
  const iterations = 4096;
  const salted = pbkdf2Sync(password, salt, iterations, createHash(digest).digest().length, digest);
  const clientKey = createHmac(digest, salted).update('Client Key').digest();
  return {
    salt,
    iterations,
    storedKey: createHash(digest).update(clientKey).digest(),
    serverKey: createHmac(digest, salted).update('Server Key').digest(),
  };
}

/** The client side of SCRAM, as an MQTT 5 client runs it over CONNECT/AUTH. */
export class ScramClient {
  private readonly nonce = randomBytes(18).toString('base64');
  private authMessage = '';
  private serverKey: Buffer | null = null;

  constructor(
    private readonly username: string,
    private readonly password: string,
    private readonly digest: 'sha256' | 'sha512' = 'sha256',
  ) {}

  get clientFirstBare(): string {
    return `n=${this.username},r=${this.nonce}`;
  }

  /** The Authentication Data of CONNECT. */
  first(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`);
  }

  /** The answer to the server-first message (the broker's AUTH 0x18). */
  final(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString();
    const attrs = new Map(text.split(',').map((p) => [p[0]!, p.slice(2)]));
    const nonce = attrs.get('r')!;
    if (!nonce.startsWith(this.nonce)) throw new Error('server nonce does not extend ours');
    const salted = pbkdf2Sync(
      this.password,
      Buffer.from(attrs.get('s')!, 'base64'),
      Number(attrs.get('i')),
      createHash(this.digest).digest().length,
      this.digest,
    );
    const clientKey = createHmac(this.digest, salted).update('Client Key').digest();
    const storedKey = createHash(this.digest).update(clientKey).digest();
    this.serverKey = createHmac(this.digest, salted).update('Server Key').digest();
    const withoutProof = `c=biws,r=${nonce}`;
    this.authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const signature = createHmac(this.digest, storedKey).update(this.authMessage).digest();
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** Whether the server-final message (in CONNACK) proves the server knows the credential. */
  verify(serverFinal: Buffer): boolean {
    const expected = createHmac(this.digest, this.serverKey!).update(this.authMessage).digest('base64');
    return serverFinal.toString() === `v=${expected}`;
  }
}
