import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal, ScramLogin, ScramMechanism } from '@robustmq/core';

/** Why an exchange failed; the client only ever hears a generic message. */
export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

const digestOf = (mechanism: ScramMechanism) => (mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512');

/** Splits `a=1,b=2` into attributes; values may contain `=`. */
function attributes(message: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ScramError(`malformed attribute ${JSON.stringify(part)}`);
    result.set(part[0]!, part.slice(2));
  }
  return result;
}

/** RFC 5802 saslname: `=2C` is a comma and `=3D` an equals sign; any other `=` is invalid. */
function decodeSaslName(name: string): string {
  if (/=(?!2C|3D)/.test(name)) throw new ScramError('malformed user name');
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/**
 * The server side of one SCRAM-SHA-256/512 exchange (RFC 5802, RFC 7677): client-first, then
 * client-final. Keys come from the user store; the password never reaches the broker.
 */
export class ScramExchange {
  private step: 'first' | 'final' | 'done' = 'first';
  private clientFirstBare = '';
  private serverFirst = '';
  private gs2Header = '';
  private nonce = '';
  private login: ScramLogin | null = null;
  /** The user named in client-first, for logs. */
  username: string | null = null;

  constructor(
    readonly mechanism: ScramMechanism,
    private readonly lookup: (username: string) => Promise<ScramLogin | null>,
  ) {}

  /** Handles the next client message: the server-first message, then the server-final one. */
  async next(message: Buffer): Promise<{ response: Buffer; principal: Principal | null }> {
    const text = message.toString('utf8');
    if (this.step === 'first') {
      this.step = 'final';
      return { response: Buffer.from(await this.clientFirst(text)), principal: null };
    }
    if (this.step === 'final') {
      this.step = 'done';
      return this.clientFinal(text);
    }
    throw new ScramError('the exchange is already over');
  }

  private async clientFirst(text: string): Promise<string> {
    // gs2-header: "n,," or "y,," (no channel binding), optionally with an authzid "a=...".
    const match = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(text);
    if (!match) {
      throw new ScramError(
        text.startsWith('p=') ? 'channel binding is not supported' : 'malformed client-first message',
      );
    }
    this.gs2Header = `${match[1]},${match[2] ?? ''},`;
    this.clientFirstBare = match[3]!;
    const attrs = attributes(this.clientFirstBare);
    if (attrs.has('m')) throw new ScramError('unsupported mandatory extension');
    const user = attrs.get('n');
    const clientNonce = attrs.get('r');
    if (user === undefined || user === '' || !clientNonce)
      throw new ScramError('client-first lacks a user or nonce');
    this.username = decodeSaslName(user);
    const authzid = match[2]?.slice(2);
    if (authzid && decodeSaslName(authzid) !== this.username) {
      throw new ScramError('an authorization id different from the user name is not supported');
    }
    this.login = await this.lookup(this.username);
    // An unknown user gets a plausible challenge and fails at the proof, like a wrong password.
    const salt = this.login ? Buffer.from(this.login.credential.salt) : randomBytes(24);
    const iterations = this.login?.credential.iterations ?? 4096;
    this.nonce = clientNonce + randomBytes(24).toString('hex');
    this.serverFirst = `r=${this.nonce},s=${salt.toString('base64')},i=${iterations}`;
    return this.serverFirst;
  }

  private clientFinal(text: string): { response: Buffer; principal: Principal } {
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramError('client-final lacks a proof');
    const withoutProof = text.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs.get('c') !== Buffer.from(this.gs2Header).toString('base64')) {
      throw new ScramError('channel binding data does not match');
    }
    // As Kafka does, accept a nonce that ends with ours: librdkafka sends its own nonce again in front.
    if (!(attrs.get('r') ?? '').endsWith(this.nonce)) throw new ScramError('nonce does not match');
    if (!this.login) throw new ScramError(`unknown user ${this.username ?? ''}`);
    const digest = digestOf(this.mechanism);
    const { storedKey, serverKey } = this.login.credential;
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = createHmac(digest, storedKey).update(authMessage).digest();
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64');
    if (proof.length !== clientSignature.length) throw new ScramError('wrong password');
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    const computed = createHash(digest).update(clientKey).digest();
    if (computed.length !== storedKey.length || !timingSafeEqual(computed, storedKey)) {
      throw new ScramError('wrong password');
    }
    const serverSignature = createHmac(digest, serverKey).update(authMessage).digest('base64');
    return { response: Buffer.from(`v=${serverSignature}`), principal: this.login.principal };
  }
}
