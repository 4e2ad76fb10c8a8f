import { randomBytes } from 'node:crypto';

interface Session {
  username: string;
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

  /** A new token for `username`. */
  issue(username: string): { token: string; expiresAt: number } {
    this.sweep();
    const token = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.ttlMs;
    this.sessions.set(token, { username, expiresAt });
    return { token, expiresAt };
  }

  /** The user a live token was issued to, or null. */
  verify(token: string): string | null {
    const session = this.sessions.get(token);
    if (!session) return null;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(token);
      return null;
    }
    return session.username;
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, session] of this.sessions) {
      if (session.expiresAt <= now) this.sessions.delete(token);
    }
  }
}
