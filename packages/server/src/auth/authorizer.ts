import type {
  Action,
  Authorizer,
  Credentials,
  Logger,
  Principal,
  ScramLogin,
  ScramMechanism,
} from '@robustmq/core';
import type { AclStore } from '../acl/acl-store.js';
import { decide } from '../acl/rules.js';
import { verifyPassword } from './passwords.js';
import type { AuthSettings } from './settings.js';
import type { UserStore } from './users.js';

/**
 * Authentication against the meta service's user store, authorization by the ACL rules. Anonymous
 * clients are let in only when `auth.allow_anonymous` is on. Superusers may do everything; for
 * everyone else a matching deny rule wins, then a matching allow rule, else `auth.acl_default`.
 */
export class UserStoreAuthorizer implements Authorizer {
  constructor(
    private readonly users: UserStore,
    private readonly acls: AclStore,
    private readonly settings: AuthSettings,
    private readonly logger: Logger,
  ) {}

  async authenticate(credentials: Credentials): Promise<Principal | null> {
    if (credentials.username === null) {
      return this.settings.allowAnonymous ? { username: null, superuser: false } : null;
    }
    const user = await this.users.get(credentials.username);
    const ok =
      user !== null &&
      credentials.password !== null &&
      (await verifyPassword(credentials.password, user.passwordHash));
    if (!ok) {
      this.logger.warn(
        {
          protocol: credentials.protocol,
          username: credentials.username,
          remoteAddress: credentials.remoteAddress,
        },
        'authentication failed',
      );
      return null;
    }
    return { username: credentials.username, superuser: user.superuser };
  }

  /** Decided from the in-memory rules (kept current by a meta watch): no I/O per call. */
  authorize(principal: Principal, action: Action, topic: string): Promise<boolean> {
    if (principal.superuser) return Promise.resolve(true);
    return Promise.resolve(decide(this.acls.rules(), principal, action, topic, this.settings.aclDefault));
  }

  async scramCredential(username: string, mechanism: ScramMechanism): Promise<ScramLogin | null> {
    const user = await this.users.get(username);
    const stored = user?.scram?.[mechanism];
    if (!user || !stored) return null;
    return {
      credential: {
        salt: Buffer.from(stored.salt, 'base64'),
        iterations: stored.iterations,
        storedKey: Buffer.from(stored.storedKey, 'base64'),
        serverKey: Buffer.from(stored.serverKey, 'base64'),
      },
      principal: { username, superuser: user.superuser },
    };
  }
}
