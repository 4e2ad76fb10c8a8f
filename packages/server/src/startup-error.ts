/** A start-up failure the user can fix (a busy port, a bad setting); printed as one line. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/**
 * The one line to show when `what` cannot listen on `host:port`, or null for an error with no
 * clearer wording than its own.
 */
export function listenProblem(error: unknown, port: number, host: string, what: string): StartupError | null {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new StartupError(`port ${port} (${what}) is already in use on ${host}`);
    case 'EACCES':
      return new StartupError(`no permission to listen on port ${port} (${what}) on ${host}`);
    case 'EADDRNOTAVAIL':
      return new StartupError(`address ${host} (${what}) is not available on this machine`);
    default:
      return null;
  }
}
