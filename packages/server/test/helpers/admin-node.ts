import type { Logger } from '@robustmq/core';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { startNode, type RunningNode } from '../../src/node.js';
import { linesProject } from './lines-project.js';

/** The bootstrap admin password the in-process test nodes are configured with. */
export const ADMIN_PASSWORD = 'admin-secret-for-tests';

export interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  msg: string | undefined;
}

/** A logger that keeps every line it is given, at every level. */
export function captureLogger(
  lines: LogLine[] = [],
  bindings: Record<string, unknown> = {},
): Logger & { lines: LogLine[] } {
  const at =
    (level: string) =>
    (fields: object | string, msg?: string): void => {
      if (typeof fields === 'string') lines.push({ level, fields: { ...bindings }, msg: fields });
      else lines.push({ level, fields: { ...bindings, ...fields }, msg });
    };
  return {
    lines,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (more) => captureLogger(lines, { ...bindings, ...more }),
  };
}

/** A parsed JSON answer; loosely typed because tests pick into it and assert on what they find. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface AdminNode {
  node: RunningNode;
  url: string;
  logs: LogLine[];
  /** Logs in and returns the token. */
  login(username?: string, password?: string): Promise<string>;
  /** One API call; `token` null sends none. */
  call(
    method: string,
    path: string,
    options?: { body?: unknown; raw?: string; token?: string | null },
  ): Promise<{ status: number; body: Json }>;
  stop(): Promise<void>;
}

/**
 * A standalone node in this process on free loopback ports, with the test-only `lines` protocol
 * (which has admin resources) and a fixed bootstrap admin password.
 */
export async function startAdminNode(settings: string[] = []): Promise<AdminNode> {
  const project = linesProject();
  const loaded = await loadConfig({
    flags: {
      dataDir: join(project.path, 'data'),
      httpPort: 0,
      bind: '127.0.0.1',
      protocols: ['robustmq-protocol-lines'],
      set: ['lines.port=0', `admin.password="${ADMIN_PASSWORD}"`, ...settings],
    },
  });
  const logs: LogLine[] = [];
  const node = await startNode({ ...loaded, baseDir: project.path }, { logger: captureLogger(logs) });
  const url = `http://127.0.0.1:${node.httpPort}`;
  let adminToken: string | undefined;

  const call: AdminNode['call'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? (adminToken ??= await login()) : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (options.raw !== undefined || options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = options.raw ?? JSON.stringify(options.body);
    }
    const response = await fetch(url + path, { method, headers, ...(body !== undefined && { body }) });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  };

  async function login(username = 'admin', password = ADMIN_PASSWORD): Promise<string> {
    const response = await fetch(`${url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    const body = (await response.json()) as { token?: string };
    if (response.status !== 200 || !body.token)
      throw new Error(`login failed: ${response.status} ${JSON.stringify(body)}`);
    return body.token;
  }

  return {
    node,
    url,
    logs,
    login,
    call,
    stop: async () => {
      await node.stop();
      project.remove();
    },
  };
}
