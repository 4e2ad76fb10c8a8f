import type { Authorizer, Principal } from '@robustmq/core';
import type { SaslMechanism } from './rhea-shapes.js';

export type SaslResult = (principal: Principal | null, mechanism: string) => void;

/** SASL PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, checked against the node's users. */
class PlainMechanism implements SaslMechanism {
  outcome: boolean | undefined;
  username: string | undefined;

  constructor(
    private readonly auth: Authorizer,
    private readonly remoteAddress: string,
    private readonly done: SaslResult,
  ) {}

  async start(response: Buffer | undefined): Promise<void> {
    const fields = (response ?? Buffer.alloc(0)).toString('utf8').split('\0');
    if (fields.length !== 3 || !fields[1]) {
      this.outcome = false;
      this.done(null, 'PLAIN');
      return;
    }
    const principal = await this.auth.authenticate({
      protocol: 'amqp',
      username: fields[1],
      password: Buffer.from(fields[2]!, 'utf8'),
      remoteAddress: this.remoteAddress,
    });
    this.outcome = principal !== null;
    this.username = fields[1];
    this.done(principal, 'PLAIN');
  }
}

/** SASL ANONYMOUS (RFC 4505): admitted when the node admits anonymous clients. */
class AnonymousMechanism implements SaslMechanism {
  outcome: boolean | undefined;
  username: string | undefined;

  constructor(
    private readonly auth: Authorizer,
    private readonly remoteAddress: string,
    private readonly done: SaslResult,
  ) {}

  async start(): Promise<void> {
    const principal = await this.auth.authenticate({
      protocol: 'amqp',
      username: null,
      password: null,
      remoteAddress: this.remoteAddress,
    });
    this.outcome = principal !== null;
    this.done(principal, 'ANONYMOUS');
  }
}

/** What rhea is given for a sasl-init after the first: refused without a look at its credentials. */
class RepeatedInit implements SaslMechanism {
  outcome = false;
  username: string | undefined;

  start(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The mechanisms offered on one connection, in rhea's shape (name to factory). A SASL exchange
 * has one sasl-init (AMQP 1.0 section 5.3.2); rhea would start a mechanism for each one sent, so
 * a client could have a password checked hundreds of times for one connection. A second one is
 * reported to `repeated` instead, and never checked.
 */
export function saslMechanisms(
  auth: Authorizer,
  allowAnonymous: boolean,
  remoteAddress: string,
  done: SaslResult,
  repeated: () => void,
): Record<string, () => SaslMechanism> {
  let initiated = false;
  const once =
    (create: () => SaslMechanism): (() => SaslMechanism) =>
    () => {
      if (initiated) {
        repeated();
        return new RepeatedInit();
      }
      initiated = true;
      return create();
    };
  const mechanisms: Record<string, () => SaslMechanism> = {
    PLAIN: once(() => new PlainMechanism(auth, remoteAddress, done)),
  };
  if (allowAnonymous) mechanisms.ANONYMOUS = once(() => new AnonymousMechanism(auth, remoteAddress, done));
  return mechanisms;
}
