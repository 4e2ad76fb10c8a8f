/** Exit codes the CLI uses, stable for scripts. */
export const ExitCode = {
  Ok: 0,
  /** The server answered, but not with what was asked (e.g. not ready, a 4xx/5xx). */
  NotOk: 1,
  /** Bad command line. */
  Usage: 2,
  /** The server could not be reached. */
  Unreachable: 3,
} as const;

export const DEFAULT_API_URL = 'http://127.0.0.1:58080';

/** A failure the CLI reports as one line and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

/** GETs a JSON resource from the admin API. */
export async function getJson<T>(server: string, path: string, timeoutMs = 5000): Promise<ApiResponse<T>> {
  let url: URL;
  try {
    url = new URL(path, server);
  } catch {
    throw new CliError(`invalid server URL ${JSON.stringify(server)}`, ExitCode.Usage);
  }
  let response: Response;
  try {
    response = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    throw new CliError(`cannot reach ${url.origin}: ${cause}`, ExitCode.Unreachable);
  }
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as T };
  } catch {
    throw new CliError(
      `${url.href} answered ${response.status} with a body that is not JSON`,
      ExitCode.NotOk,
    );
  }
}
