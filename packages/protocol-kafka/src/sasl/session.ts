import type { Authorizer, Logger, Principal, ScramMechanism } from '@robustmq/core';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import { ScramError, ScramExchange } from './scram.js';

/** The outcome of one SASL token. */
export type SaslStep =
  /** More tokens to come: send `response` back. */
  | { kind: 'continue'; response: Buffer }
  /** Authenticated as `principal`; `response` is the last server message (may be empty). */
  | { kind: 'done'; response: Buffer; principal: Principal }
  | { kind: 'failed'; errorCode: number; message: string };

export interface SaslPeer {
  clientId: string | null;
  remoteAddress: string;
}

/** Splits a PLAIN token, `authzid \0 user \0 password` (RFC 4616). */
export function parsePlain(token: Buffer): { authzid: string; username: string; password: Buffer } | null {
  const first = token.indexOf(0);
  const second = first < 0 ? -1 : token.indexOf(0, first + 1);
  if (second < 0 || token.indexOf(0, second + 1) >= 0) return null;
  return {
    authzid: token.subarray(0, first).toString('utf8'),
    username: token.subarray(first + 1, second).toString('utf8'),
    password: Buffer.from(token.subarray(second + 1)),
  };
}

/**
 * One connection's SASL state: the mechanism SaslHandshake chose and the exchange in progress.
 * Authentication goes to the node's {@link Authorizer}: passwords for PLAIN, stored SCRAM keys for
 * SCRAM-SHA-256/512. Every failure is logged with its real reason; the client hears a generic one.
 */
export class SaslSession {
  private mechanism: string | null = null;
  private scram: ScramExchange | null = null;
  private finished = false;

  constructor(
    private readonly enabled: readonly string[],
    private readonly auth: Authorizer,
    private readonly peer: SaslPeer,
    private readonly logger: Logger,
    /** Called once per finished exchange (for metrics). */
    private readonly onResult: (mechanism: string, succeeded: boolean) => void = () => {},
  ) {}

  /** SaslHandshake: picks the mechanism, or answers UNSUPPORTED_SASL_MECHANISM. */
  handshake(mechanism: string): number {
    if (this.finished) return E.illegalSaslState;
    if (!this.enabled.includes(mechanism)) {
      this.logger.warn({ mechanism, remoteAddress: this.peer.remoteAddress }, 'SASL mechanism not enabled');
      return E.unsupportedSaslMechanism;
    }
    this.mechanism = mechanism;
    this.scram = null;
    return E.none;
  }

  /** The next token of the exchange (SaslAuthenticate, or a raw frame after SaslHandshake v0). */
  async authenticate(token: Buffer): Promise<SaslStep> {
    if (this.mechanism === null || this.finished) {
      return {
        kind: 'failed',
        errorCode: E.illegalSaslState,
        message: 'SaslAuthenticate before a SaslHandshake',
      };
    }
    try {
      if (this.mechanism === 'PLAIN') return await this.plain(token);
      const mechanism = this.mechanism as ScramMechanism;
      this.scram ??= new ScramExchange(mechanism, (user) => this.auth.scramCredential(user, mechanism));
      const { response, principal } = await this.scram.next(token);
      if (!principal) return { kind: 'continue', response };
      return this.succeeded(principal, response);
    } catch (error) {
      const reason = error instanceof ScramError ? error.message : String(error);
      if (!(error instanceof ScramError)) this.logger.error({ err: error }, 'SASL authentication error');
      return this.failed(this.scram?.username ?? null, reason);
    }
  }

  private async plain(token: Buffer): Promise<SaslStep> {
    const parsed = parsePlain(token);
    if (!parsed) return this.failed(null, 'malformed PLAIN token');
    if (parsed.authzid !== '' && parsed.authzid !== parsed.username) {
      return this.failed(
        parsed.username,
        'an authorization id different from the user name is not supported',
      );
    }
    const principal = await this.auth.authenticate({
      protocol: 'kafka',
      username: parsed.username,
      password: parsed.password,
      clientId: this.peer.clientId ?? undefined,
      remoteAddress: this.peer.remoteAddress,
    });
    if (!principal || principal.username === null)
      return this.failed(parsed.username, 'wrong user name or password');
    return this.succeeded(principal, Buffer.alloc(0));
  }

  private succeeded(principal: Principal, response: Buffer): SaslStep {
    this.finished = true;
    this.onResult(this.mechanism ?? '', true);
    this.logger.info(
      { user: principal.username, mechanism: this.mechanism, remoteAddress: this.peer.remoteAddress },
      'SASL authenticated',
    );
    return { kind: 'done', response, principal };
  }

  private failed(username: string | null, reason: string): SaslStep {
    this.finished = true;
    this.onResult(this.mechanism ?? '', false);
    this.logger.warn(
      { user: username, mechanism: this.mechanism, remoteAddress: this.peer.remoteAddress, reason },
      'SASL authentication failed',
    );
    return {
      kind: 'failed',
      errorCode: E.saslAuthenticationFailed,
      message: `Authentication failed: invalid credentials with SASL mechanism ${this.mechanism ?? ''}`,
    };
  }
}
