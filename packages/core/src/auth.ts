/** Who is asking: the result of authentication. */
export interface Principal {
  /** null for an anonymous client. */
  username: string | null;
  /** May do everything, regardless of ACLs. */
  superuser: boolean;
}

export interface Credentials {
  /** The protocol plugin's name, e.g. `mqtt`. */
  protocol: string;
  username: string | null;
  password: Uint8Array | null;
  clientId?: string;
  remoteAddress?: string;
}

/** What a principal wants to do with a topic or address. */
export type Action = 'publish' | 'subscribe' | 'create' | 'delete' | 'describe' | 'alter';

export interface Authorizer {
  /** The principal, or null when the credentials are refused. Never throws for wrong credentials. */
  authenticate(credentials: Credentials): Promise<Principal | null>;
  /** Whether `principal` may perform `action` on `topic` (a topic name or an MQTT topic filter). */
  authorize(principal: Principal, action: Action, topic: string): Promise<boolean>;
  /**
   * The stored SCRAM credential of `username` for `mechanism` (RFC 5802 / RFC 7677), with the
   * principal a successful exchange yields; null for an unknown user. Protocols with SASL SCRAM
   * (Kafka) run the exchange themselves; the password is never stored or returned.
   */
  scramCredential(username: string, mechanism: ScramMechanism): Promise<ScramLogin | null>;
}

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

/** What a server keeps to verify a SCRAM exchange: salt, iteration count, StoredKey and ServerKey. */
export interface ScramCredential {
  salt: Uint8Array;
  iterations: number;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

export interface ScramLogin {
  credential: ScramCredential;
  principal: Principal;
}
