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
