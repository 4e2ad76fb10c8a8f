/** The bootstrap admin's password the test servers are given (`[admin] password`). */
export const ADMIN_PASSWORD = 'kafka-test-admin-pw';

/** Config lines that give a test server a known bootstrap admin password. */
export const ADMIN_CONFIG = ['[admin]', `password = "${ADMIN_PASSWORD}"`];

/** A logged-in client of a server's admin HTTP API. */
export interface AdminApi {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
}

export async function adminApi(httpUrl: string): Promise<AdminApi> {
  const login = await fetch(`${httpUrl}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  if (login.status !== 200) throw new Error(`admin login failed: ${login.status} ${await login.text()}`);
  const { token } = (await login.json()) as { token: string };
  return {
    async call(method, path, body) {
      const response = await fetch(`${httpUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text === '' ? null : (JSON.parse(text) as unknown) };
    },
  };
}
