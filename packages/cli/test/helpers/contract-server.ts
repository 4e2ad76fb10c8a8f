import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/** A request the contract server received, for asserting what the CLI sent. */
export interface Received {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  body: unknown;
}

type Item = { id: string } & Record<string, unknown>;

export interface ContractServer {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

export const CONTRACT_TOKEN = 'contract-token';

/**
 * A tiny HTTP server answering the protocol-resource routes of the admin API contract
 * (/work/notes/admin-api-contract.md) from fixed data: login, pagination with `limit`/`after`,
 * item details, DELETE (405 for a resource that cannot remove), actions, and the error body.
 * It stands in for protocol plugins the real server does not load in these tests.
 */
export async function startContractServer(
  resources: Record<string, Item[]>,
  removable: string[],
): Promise<ContractServer> {
  const received: Received[] = [];
  const data = new Map(Object.entries(resources).map(([k, v]) => [k, [...v]]));
  const send = (res: ServerResponse, status: number, body?: unknown) => {
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, code: string, message: string, field?: string) =>
    send(res, status, { error: { code, message, ...(field ? { field } : {}) } });

  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    const url = new URL(req.url!, 'http://x');
    const body: unknown = text ? JSON.parse(text) : undefined;
    received.push({
      method: req.method!,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: req.headers.authorization,
      body,
    });
    if (req.method === 'POST' && url.pathname === '/api/v1/login') {
      const { username, password } = body as { username: string; password: string };
      if (username === 'admin' && password === 'right')
        return send(res, 200, { token: CONTRACT_TOKEN, expiresAt: 0 });
      return error(res, 401, 'UNAUTHENTICATED', 'wrong user name or password');
    }
    if (req.headers.authorization !== `Bearer ${CONTRACT_TOKEN}`) {
      return error(res, 401, 'UNAUTHENTICATED', 'missing token');
    }
    const [, , , protocol, resource, id, act] = url.pathname.split('/').map(decodeURIComponent);
    const key = `${protocol}/${resource}`;
    const items = data.get(key);
    if (!items) return error(res, 404, 'NOT_FOUND', `no protocol ${protocol} with admin resources`);
    if (id === undefined) {
      const limit = Number(url.searchParams.get('limit') ?? 100);
      const after = url.searchParams.get('after');
      const start = after === null ? 0 : items.findIndex((i) => i.id === after) + 1;
      const page = items.slice(start, start + limit);
      const more = start + limit < items.length;
      return send(res, 200, { items: page, next: more ? page.at(-1)!.id : null });
    }
    const item = items.find((i) => i.id === id);
    if (req.method === 'POST' && act !== undefined) {
      if (!item) return error(res, 404, 'NOT_FOUND', `${resource}: no ${id}`);
      const request = body as Record<string, unknown>;
      if (request.topic === 'unknown') {
        return error(res, 400, 'INVALID_ARGUMENT', 'the group has no offsets on topic unknown', 'topic');
      }
      return send(res, 200, { offsets: [{ topic: request.topic, partition: 0, offset: 0 }] });
    }
    if (req.method === 'DELETE') {
      if (!removable.includes(key))
        return error(res, 405, 'INVALID_ARGUMENT', `${resource} cannot be removed`);
      if (!item) return error(res, 404, 'NOT_FOUND', `${resource}: no ${id}`);
      items.splice(items.indexOf(item), 1);
      return send(res, 204);
    }
    if (!item) return error(res, 404, 'NOT_FOUND', `${resource}: no ${id}`);
    return send(res, 200, item);
  };

  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => handle(req, res, text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
