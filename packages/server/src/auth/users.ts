import { ErrorCode, RobustMQError, type MetaStore } from '@robustmq/core';
import { hashPassword } from './passwords.js';
import { deriveScramCredential, SCRAM_MECHANISMS, type StoredScramCredential } from './scram.js';

/** A user as stored in the meta service under `/users/<name>`. */
export interface StoredUser {
  passwordHash: string;
  superuser: boolean;
  createdAt: number;
  /** SCRAM keys per mechanism (Kafka SASL SCRAM), derived when the password is set. */
  scram?: Partial<Record<string, StoredScramCredential>>;
}

/** What a user name may look like: 1 to 128 of `A-Z a-z 0-9 . _ @ -`. */
export const USERNAME = /^[A-Za-z0-9._@-]{1,128}$/;
const USERS_PREFIX = '/users/';
const userKey = (name: string) => USERS_PREFIX + name;

/** A user as listed: no secrets. */
export interface UserSummary {
  name: string;
  superuser: boolean;
  createdAt: number;
}

async function secrets(password: string): Promise<Pick<StoredUser, 'passwordHash' | 'scram'>> {
  if (password.length === 0) throw new RobustMQError(ErrorCode.InvalidArgument, 'empty password');
  const scram: Record<string, StoredScramCredential> = {};
  for (const mechanism of SCRAM_MECHANISMS) {
    scram[mechanism] = await deriveScramCredential(password, mechanism);
  }
  return { passwordHash: await hashPassword(password), scram };
}

const decodeUser = (value: Uint8Array) => JSON.parse(Buffer.from(value).toString('utf8')) as StoredUser;

/** The user store in the meta service, shared by every protocol's authentication. */
export class UserStore {
  constructor(private readonly meta: MetaStore) {}

  async create(name: string, password: string, options: { superuser?: boolean } = {}): Promise<void> {
    if (!USERNAME.test(name)) {
      throw new RobustMQError(ErrorCode.InvalidArgument, `invalid user name ${JSON.stringify(name)}`);
    }
    const user: StoredUser = {
      ...(await secrets(password)),
      superuser: options.superuser ?? false,
      createdAt: Date.now(),
    };
    try {
      await this.meta.put(userKey(name), Buffer.from(JSON.stringify(user)), { ifRevision: 0 });
    } catch (error) {
      if (error instanceof RobustMQError && error.code === ErrorCode.Conflict) {
        throw new RobustMQError(ErrorCode.AlreadyExists, `user ${name} already exists`);
      }
      throw error;
    }
  }

  async get(name: string): Promise<StoredUser | null> {
    if (!USERNAME.test(name)) return null;
    const entry = await this.meta.get(userKey(name));
    return entry ? decodeUser(entry.value) : null;
  }

  /** Users in name order after `after`, at most `limit`. */
  async list(page: { after?: string; limit?: number } = {}): Promise<UserSummary[]> {
    const entries = await this.meta.list(USERS_PREFIX, {
      ...(page.after !== undefined && { startAfter: userKey(page.after) }),
      ...(page.limit !== undefined && { limit: page.limit }),
    });
    return entries.map((entry) => {
      const user = decodeUser(entry.value);
      return {
        name: entry.key.slice(USERS_PREFIX.length),
        superuser: user.superuser,
        createdAt: user.createdAt,
      };
    });
  }

  /** Replaces the password: a new scrypt hash and new SCRAM keys. `NOT_FOUND` for an unknown user. */
  async setPassword(name: string, password: string): Promise<void> {
    const fresh = await secrets(password);
    for (;;) {
      const entry = USERNAME.test(name) ? await this.meta.get(userKey(name)) : null;
      if (!entry) throw new RobustMQError(ErrorCode.NotFound, `user ${name} does not exist`);
      const user: StoredUser = { ...decodeUser(entry.value), ...fresh };
      try {
        await this.meta.put(userKey(name), Buffer.from(JSON.stringify(user)), {
          ifRevision: entry.modRevision,
        });
        return;
      } catch (error) {
        if (!(error instanceof RobustMQError && error.code === ErrorCode.Conflict)) throw error;
      }
    }
  }

  async delete(name: string): Promise<boolean> {
    return USERNAME.test(name) ? this.meta.delete(userKey(name)) : false;
  }
}
