/** Exit codes the CLI uses, stable for scripts. */
export const ExitCode = {
  Ok: 0,
  /** The server answered, but not with what was asked: not ready, not found, refused as invalid. */
  NotOk: 1,
  /** Bad command line. */
  Usage: 2,
  /** The server (or broker) could not be reached. */
  Unreachable: 3,
  /** Credentials missing, wrong, or not allowed to do this. */
  AuthRefused: 4,
} as const;

export const DEFAULT_API_URL = 'http://127.0.0.1:58080';

/** A failure the CLI reports as one line and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The HTTP status, when the admin API answered with an error. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

/** The error body every admin API route answers with on 4xx/5xx. */
interface ApiErrorBody {
  error?: { code?: string; message?: string; field?: string };
}

/** How the CLI proves who it is: a token, or a user name and password to log in with. */
export interface Credentials {
  token?: string;
  user?: string;
  password?: string;
}

function resolveUrl(server: string, path: string): URL {
  try {
    return new URL(path, server);
  } catch {
    throw new CliError(`invalid server URL ${JSON.stringify(server)}`, ExitCode.Usage);
  }
}

/** Why a TLS client refuses a certificate it cannot trace to a CA it trusts. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

async function send(url: URL, init: RequestInit, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    const hint = UNTRUSTED_CERTIFICATE.has(cause)
      ? ' (if your own CA signed its certificate, trust it: NODE_EXTRA_CA_CERTS=<ca.pem>)'
      : '';
    throw new CliError(`cannot reach ${url.origin}: ${cause}${hint}`, ExitCode.Unreachable);
  }
}

/** GETs a JSON resource from the admin API, whatever its status. */
export async function getJson<T>(server: string, path: string, timeoutMs = 5000): Promise<ApiResponse<T>> {
  const url = resolveUrl(server, path);
  const response = await send(url, { headers: { accept: 'application/json' } }, timeoutMs);
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

/** Maps an HTTP error status to the CLI's exit code. */
export function exitCodeForStatus(status: number): number {
  return status === 401 || status === 403 ? ExitCode.AuthRefused : ExitCode.NotOk;
}

/**
 * A client of the admin API (`/api/v1`). It logs in on first use when given a user and password,
 * and turns every error answer into a {@link CliError} carrying the server's code and message.
 */
export class AdminApi {
  private token: string | undefined;

  constructor(
    readonly server: string,
    private readonly credentials: Credentials = {},
    private readonly timeoutMs = 10_000,
  ) {
    this.token = credentials.token;
  }

  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T> {
    return this.request<T>('GET', path, undefined, query);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path);
  }

  /**
   * DELETEs a resource; with `ifExists`, one that is already gone (404) counts as done. Resolves
   * to whether there was one to delete.
   */
  async remove(path: string, ifExists = false): Promise<boolean> {
    try {
      await this.delete(path);
      return true;
    } catch (error) {
      if (!(ifExists && error instanceof CliError && error.status === 404)) throw error;
      return false;
    }
  }

  /** Sends one request under `/api/v1`; resolves to the parsed body (undefined for 204). */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    query?: Record<string, string | number | undefined>,
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = await this.authenticate();
    if (token) headers.authorization = `Bearer ${token}`;
    return this.call<T>(method, path, body, query, headers);
  }

  private async authenticate(): Promise<string | undefined> {
    if (this.token || !this.credentials.user) return this.token;
    if (this.credentials.password === undefined) {
      throw new CliError('--user needs --password (or ROBUSTMQ_PASSWORD)', ExitCode.Usage);
    }
    const answer = await this.call<{ token: string }>(
      'POST',
      '/login',
      { username: this.credentials.user, password: this.credentials.password },
      undefined,
      { accept: 'application/json' },
    );
    this.token = answer.token;
    return this.token;
  }

  private async call<T>(
    method: string,
    path: string,
    body: unknown,
    query: Record<string, string | number | undefined> | undefined,
    headers: Record<string, string>,
  ): Promise<T> {
    const url = resolveUrl(this.server, `/api/v1${path}`);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await send(url, init, this.timeoutMs);
    const text = await response.text();
    let parsed: unknown;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new CliError(
          `${method} ${url.pathname} answered ${response.status} with a body that is not JSON`,
          ExitCode.NotOk,
        );
      }
    }
    if (response.ok) return parsed as T;
    throw this.failure(method, url, response.status, parsed as ApiErrorBody | undefined);
  }

  private failure(method: string, url: URL, status: number, body: ApiErrorBody | undefined): CliError {
    const error = body?.error;
    const what = error?.message ?? `${method} ${url.pathname} answered ${status}`;
    const field = error?.field ? ` (${error.field})` : '';
    const code = error?.code ? `${error.code}: ` : '';
    let hint = '';
    if (status === 401 && !this.credentials.user && !this.credentials.token) {
      hint = '; pass --user and --password (or ROBUSTMQ_USER/ROBUSTMQ_PASSWORD) or --token';
    }
    return new CliError(`${code}${what}${field}${hint}`, exitCodeForStatus(status), status);
  }
}
