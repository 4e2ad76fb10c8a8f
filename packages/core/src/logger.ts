/** One log call: a message, or structured fields followed by a message. */
export interface LogFn {
  (message: string): void;
  (fields: object, message?: string): void;
}

/**
 * The logger every package writes to. It is the subset of pino's API that we use, so the server
 * passes its pino instance straight through and tests can pass {@link silentLogger}.
 */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** A logger whose lines all carry `bindings` (e.g. `{ protocol: 'mqtt', clientId }`). */
  child(bindings: Record<string, unknown>): Logger;
}

const ignore: LogFn = () => {};

/** A logger that drops everything; for tests and embedded use. */
export const silentLogger: Logger = {
  trace: ignore,
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
  fatal: ignore,
  child: () => silentLogger,
};
