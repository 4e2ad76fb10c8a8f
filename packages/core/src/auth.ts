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
}
