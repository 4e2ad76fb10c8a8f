/** A start-up failure the user can fix (a busy port, a bad setting); printed as one line. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}
