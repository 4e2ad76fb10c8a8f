import { randomBytes } from 'node:crypto';

/** Who a live token was issued to. */
export interface Session {
  username: string;
  /**
   * The user's password hash when the token was issued. Each password (and each user made again
   * under an old name) gets a fresh salt, so a token whose hash no longer matches the stored user
   * outlived a password change or its user.
   */
  passwordHash: string;
  expiresAt: number;
}

/**
 * Admin API login tokens: 32 random bytes, kept in this process's memory until they expire. A
 * restart (or another node) does not know them, so clients log in again; nothing secret is stored.
 */
export class TokenStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new token for `username`, whose password hash is now `passwordHash`. */
  issue(username: string, passwordHash: string): { token: string; expiresAt: number } {
    this.sweep();
    const token = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.ttlMs;
    this.sessions.set(token, { username, passwordHash, expiresAt });
    return { token, expiresAt };
  }

  /** The session of a live token, or null. */
  verify(token: string): Session | null {
    const session = this.sessions.get(token);
    if (!session) return null;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(token);
      return null;
    }
    return session;
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, session] of this.sessions) {
      if (session.expiresAt <= now) this.sessions.delete(token);
    }
  }
}
