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

const USERNAME = /^[A-Za-z0-9._@-]{1,128}$/;
const userKey = (name: string) => `/users/${name}`;

/** The user store in the meta service, shared by every protocol's authentication. */
export class UserStore {
  constructor(private readonly meta: MetaStore) {}

  async create(name: string, password: string, options: { superuser?: boolean } = {}): Promise<void> {
    if (!USERNAME.test(name)) {
      throw new RobustMQError(ErrorCode.InvalidArgument, `invalid user name ${JSON.stringify(name)}`);
    }
    if (password.length === 0) throw new RobustMQError(ErrorCode.InvalidArgument, 'empty password');
    const scram: Record<string, StoredScramCredential> = {};
    for (const mechanism of SCRAM_MECHANISMS) {
      scram[mechanism] = await deriveScramCredential(password, mechanism);
    }
    const user: StoredUser = {
      passwordHash: await hashPassword(password),
      superuser: options.superuser ?? false,
      createdAt: Date.now(),
      scram,
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
    return entry ? (JSON.parse(Buffer.from(entry.value).toString('utf8')) as StoredUser) : null;
  }

  async delete(name: string): Promise<boolean> {
    return USERNAME.test(name) ? this.meta.delete(userKey(name)) : false;
  }
}
