import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import pLimit from 'p-limit';

const COST = { N: 16384, r: 8, p: 1 };
const KEY_LENGTH = 32;

/**
 * scrypt runs on libuv's thread pool (4 threads unless UV_THREADPOOL_SIZE says otherwise), which
 * storage I/O also uses: a flood of logins must not take every thread, or acknowledgements of
 * every client's durable writes wait behind the password checks. Logins queue here instead, two
 * checks at a time, which leaves the other threads to storage.
 */
export const MAX_CONCURRENT_PASSWORD_CHECKS = 2;
const derivations = pLimit(MAX_CONCURRENT_PASSWORD_CHECKS);

function derive(password: Uint8Array, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return derivations(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scrypt(password, salt, KEY_LENGTH, { ...options, maxmem: 64 * 1024 * 1024 }, (error, key) =>
          error ? reject(error) : resolve(key),
        ),
      ),
  );
}

/** An scrypt hash in the form `scrypt$N$r$p$salt$key` (base64), carrying its own cost. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(Buffer.from(password, 'utf8'), salt, COST);
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Whether `password` matches `hash`; false (never an exception) for a malformed hash. */
export async function verifyPassword(password: Uint8Array, hash: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = hash.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const actual = await derive(password, Buffer.from(salt, 'base64'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
