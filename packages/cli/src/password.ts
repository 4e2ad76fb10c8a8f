import { CliError, ExitCode } from './api.js';

/** Reads a password from the first line of stdin (`--new-password-stdin`, as `docker login` does). */
export async function passwordFromStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += (chunk as Buffer).toString('utf8');
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new CliError('no password on stdin', ExitCode.Usage);
  return password;
}

/** The new password from `--new-password` or `--new-password-stdin`; exactly one of them. */
export async function newPassword(options: {
  newPassword?: string;
  newPasswordStdin?: boolean;
}): Promise<string> {
  if (options.newPassword !== undefined && options.newPasswordStdin) {
    throw new CliError('give --new-password or --new-password-stdin, not both', ExitCode.Usage);
  }
  if (options.newPassword !== undefined) return options.newPassword;
  if (options.newPasswordStdin) return passwordFromStdin();
  throw new CliError(
    'give the password with --new-password <password> or --new-password-stdin',
    ExitCode.Usage,
  );
}
