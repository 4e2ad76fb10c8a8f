import type * as Crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

const seen = vi.hoisted(() => ({ running: 0, most: 0 }));

// Counts the scrypt derivations under way at once, as the thread pool sees them.
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof Crypto>();
  const scrypt = (...args: unknown[]): void => {
    const done = args.pop() as (error: Error | null, key: Buffer) => void;
    seen.running++;
    seen.most = Math.max(seen.most, seen.running);
    (crypto.scrypt as (...a: unknown[]) => void)(...args, (error: Error | null, key: Buffer) => {
      seen.running--;
      done(error, key);
    });
  };
  return { ...crypto, scrypt };
});

const { hashPassword, verifyPassword, MAX_CONCURRENT_PASSWORD_CHECKS } =
  await import('../src/auth/passwords.js');

describe('password checks', () => {
  it('run at most a few at a time however many logins arrive, and still answer each one right', async () => {
    const hash = await hashPassword('right');
    seen.most = 0;
    const attempts = Array.from({ length: 24 }, (_, i) =>
      verifyPassword(Buffer.from(i % 3 === 0 ? 'right' : 'wrong'), hash),
    );
    const results = await Promise.all(attempts);
    expect(results).toEqual(Array.from({ length: 24 }, (_, i) => i % 3 === 0));
    expect(seen.most).toBe(MAX_CONCURRENT_PASSWORD_CHECKS);
    expect(MAX_CONCURRENT_PASSWORD_CHECKS).toBeLessThan(4);
  });
});
