import { cpus, release, tmpdir, totalmem } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The option table of `parseArgs`. */
export type SuiteOptions = NonNullable<ParseArgsConfig['options']>;

/** One benchmark suite: `npm run bench -- <name> [options]`. */
export interface Suite {
  readonly name: string;
  /** One line for the usage text. */
  readonly summary: string;
  /** The suite's own options, for the usage text. */
  readonly options: string;
  /** Runs the suite with the arguments after its name; throws {@link UsageError} for bad ones. */
  run(args: readonly string[]): Promise<void>;
}

/** Bad command-line arguments: the dispatcher prints the message and the usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses a suite's options; an unknown or malformed one becomes a {@link UsageError}. */
export function parseSuiteArgs<const O extends SuiteOptions>(
  args: readonly string[],
  options: O,
): ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>
>['values'] {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The number an option gives, or `fallback` when it is absent; anything but a positive number is a usage error. */
export function positiveOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} must be a positive number`);
  return value;
}

/** As {@link positiveOption}, but 0 is allowed too. */
export function nonNegativeOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`--${name} must be 0 or more`);
  return value;
}

/** Progress lines go to stderr, so `--json` output on stdout stays clean. */
export function progressTo(suite: string): (line: string) => void {
  return (line) => process.stderr.write(`[${suite}] ${line}\n`);
}

/** The machine a run was measured on, for the report and `--json`. */
export function describeMachine(): Record<string, string | number> {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    os: `${process.platform} ${release()}`,
    node: process.version,
    tmpdir: tmpdir(),
  };
}
