import type {
  Action,
  Authorizer,
  Credentials,
  Logger,
  Principal,
  ScramLogin,
  ScramMechanism,
} from '@robustmq/core';
import { verifyPassword } from './passwords.js';
import type { UserStore } from './users.js';

/**
 * Authentication against the meta service's user store. Anonymous clients are let in only when
 * `auth.allow_anonymous` is on. Until ACL rules exist (they come with the admin API), an
 * authenticated principal may do everything, as in Mosquitto without an ACL file.
 */
export class UserStoreAuthorizer implements Authorizer {
  constructor(
    private readonly users: UserStore,
    private readonly allowAnonymous: boolean,
    private readonly logger: Logger,
  ) {}

  async authenticate(credentials: Credentials): Promise<Principal | null> {
    if (credentials.username === null) {
      return this.allowAnonymous ? { username: null, superuser: false } : null;
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

  authorize(_principal: Principal, _action: Action, _topic: string): Promise<boolean> {
    return Promise.resolve(true);
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
