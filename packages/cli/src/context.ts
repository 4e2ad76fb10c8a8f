import type { Command } from 'commander';
import { AdminApi, type Credentials } from './api.js';
import type { OutputFormat } from './output.js';

/** The options every command takes (set on the program, usable after any subcommand). */
export interface GlobalOptions {
  server: string;
  output: OutputFormat;
  user?: string;
  password?: string;
  token?: string;
  progress?: boolean;
}

/** What a command runs with: the admin API, the output format and where to write. */
export interface Context {
  api: AdminApi;
  server: string;
  output: OutputFormat;
  credentials: Credentials;
  /** Shows a progress line on stderr: on a terminal, or when asked with `--progress`. */
  progress: boolean;
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Builds the context of a command from its options and the program's. */
export function contextOf(command: Command): Context {
  const options = command.optsWithGlobals<GlobalOptions>();
  const credentials: Credentials = {};
  if (options.token) credentials.token = options.token;
  if (options.user) credentials.user = options.user;
  if (options.password !== undefined) credentials.password = options.password;
  return {
    api: new AdminApi(options.server, credentials),
    server: options.server,
    output: options.output,
    credentials,
    progress: options.progress ?? process.stderr.isTTY,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  };
}

/**
 * Wraps a command's body as a commander action: builds its context, passes the positional
 * arguments and the command's own options, and sets the exit code it returns (0 by default).
 */
export function action<O = Record<string, unknown>>(
  body: (context: Context, args: string[], options: O) => Promise<number | void>,
): (...params: unknown[]) => Promise<void> {
  return async (...params) => {
    const command = params.at(-1) as Command;
    const options = params.at(-2) as O;
    const args = params.slice(0, -2) as string[];
    const code = await body(contextOf(command), args, options);
    process.exitCode = code ?? 0;
  };
}
