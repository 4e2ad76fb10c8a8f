import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built `robustmq` bin, run as a user runs it. */
export const CLI = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without the caller's ROBUSTMQ_* settings, plus `env`. */
function environment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_'))),
    ...env,
  };
}

/** Runs `robustmq args…` to the end; `input` is written to its stdin (closed either way). */
export function run(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<Result> {
  const child = spawn(process.execPath, [CLI, ...args], { env: environment(options.env ?? {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A `robustmq` process left running (a subscriber), with its output so far. */
export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Waits until stderr matches `pattern` (e.g. the "subscribed to" line of --progress). */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Waits for the process to end. */
  done(): Promise<Result>;
}

export function start(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Running {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: environment(options.env ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<Result>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async waitForStderr(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(stderr)) {
        if (child.exitCode !== null) throw new Error(`robustmq ended (${child.exitCode}): ${stderr}`);
        if (Date.now() > deadline) throw new Error(`no ${pattern} on stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    done: () => closed,
  };
}

/** The arguments of `robustmq acl create` for a rule denying `principal` to `action` on `topic`. */
export function denyRule(principal: string, action: string, topic: string): string[] {
  return [
    'acl',
    'create',
    '--principal',
    principal,
    '--action',
    action,
    '--topic',
    topic,
    '--permission',
    'deny',
  ];
}
