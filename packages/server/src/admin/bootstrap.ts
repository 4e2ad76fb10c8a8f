import { randomBytes } from 'node:crypto';
import { ErrorCode, isRobustMQError, type Logger } from '@robustmq/core';
import type { UserStore } from '../auth/users.js';

/** The user the first start creates. */
export const BOOTSTRAP_USER = 'admin';

/**
 * On the first start (no users at all) creates the superuser `admin`. Its password is `password`
 * (config `admin.password` / env `ROBUSTMQ_ADMIN_PASSWORD`) or, unset, a random one written once to
 * `print` (stderr) as `bootstrap admin password: <pw>`; it is never logged and never a fixed default.
 * Returns whether the user was created here (another node may win the race in a cluster).
 */
export async function bootstrapAdmin(
  users: UserStore,
  password: string | undefined,
  logger: Logger,
  print: (line: string) => void = (line) => process.stderr.write(line),
): Promise<boolean> {
  if ((await users.list({ limit: 1 })).length > 0) return false;
  const chosen = password ?? randomBytes(18).toString('base64url');
  try {
    await users.create(BOOTSTRAP_USER, chosen, { superuser: true });
  } catch (error) {
    if (isRobustMQError(error, ErrorCode.AlreadyExists)) return false;
    throw error;
  }
  if (password === undefined) print(`bootstrap admin password: ${chosen}\n`);
  logger.info(
    {
      user: BOOTSTRAP_USER,
      password: password === undefined ? 'generated, printed to stderr' : 'from config',
    },
    'bootstrap admin user created',
  );
  return true;
}
