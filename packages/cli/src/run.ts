import { CliError, ExitCode } from './api.js';

/** Ends a receiving run: with an exit code, or with an error to report. */
export type Stop = (result: number | CliError) => void;

/**
 * Runs a receiver until it calls `stop`, Ctrl-C (exit 0), or `timeout` seconds pass (exit 1).
 * `start` sets the receiver up; an error it throws ends the run.
 */
export async function untilStopped(
  options: { timeout?: number },
  start: (stop: Stop) => Promise<void>,
  timedOut: (seconds: number) => string = (seconds) => `nothing within ${seconds}s`,
): Promise<number> {
  let stop: Stop = () => {};
  const stopped = new Promise<number>((resolve, reject) => {
    stop = (result) => (typeof result === 'number' ? resolve(result) : reject(result));
  });
  // Set up before `start` can fail, so a late stop after a failed start is not an unhandled rejection.
  stopped.catch(() => undefined);
  const interrupt = () => stop(ExitCode.Ok);
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const timer =
    options.timeout === undefined
      ? undefined
      : setTimeout(
          () => stop(new CliError(timedOut(options.timeout!), ExitCode.NotOk)),
          options.timeout * 1000,
        );
  try {
    await start(stop);
    return await stopped;
  } finally {
    if (timer) clearTimeout(timer);
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
  }
}
