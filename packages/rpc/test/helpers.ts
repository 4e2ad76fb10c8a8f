import type { Logger, LogFn, MetricLabels, Metrics } from '@robustmq/core';
import {
  createRpcServer,
  connectRpc,
  type RpcClient,
  type RpcClientOptions,
  type RpcServer,
  type RpcServerOptions,
} from '../src/index.js';

export interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

/** A logger that keeps every line, to assert on what a server logged. */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const fn =
      (level: string): LogFn =>
      (first: object | string, message?: string) => {
        if (typeof first === 'string') lines.push({ level, fields: { ...bindings }, message: first });
        else lines.push({ level, fields: { ...bindings, ...first }, message: message ?? '' });
      };
    return {
      trace: fn('trace'),
      debug: fn('debug'),
      info: fn('info'),
      warn: fn('warn'),
      error: fn('error'),
      fatal: fn('fatal'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return Object.assign(make({}), { lines });
}

/** Tracks servers and clients a test opens so they are all closed after it. */
export class Harness {
  private readonly servers: RpcServer[] = [];
  private readonly clients: RpcClient[] = [];

  async server(options: RpcServerOptions = {}, setup?: (server: RpcServer) => void): Promise<RpcServer> {
    const server = createRpcServer({ host: '127.0.0.1', port: 0, ...options });
    setup?.(server);
    await server.listen();
    this.servers.push(server);
    return server;
  }

  client(port: number, options: Partial<RpcClientOptions> = {}): RpcClient {
    const client = connectRpc({ host: '127.0.0.1', port, ...options });
    this.clients.push(client);
    return client;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.close()));
    await Promise.all(this.servers.map((server) => server.close()));
    this.clients.length = 0;
    this.servers.length = 0;
  }
}

/** Resolves once `condition` holds, polling; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the error `promise` rejects with; fails if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Metrics that keep counter and gauge values by name and labels, to assert on. */
export function recordingMetrics(): Metrics & { value(name: string, labels?: MetricLabels): number } {
  const values = new Map<string, number>();
  const key = (name: string, labels?: MetricLabels): string => `${name}${JSON.stringify(labels ?? {})}`;
  const add =
    (name: string) =>
    (labels?: MetricLabels, by = 1) =>
      values.set(key(name, labels), (values.get(key(name, labels)) ?? 0) + by);
  return {
    counter: ({ name }) => ({ inc: add(name) }),
    gauge: ({ name }) => ({
      inc: add(name),
      dec: (labels, by = 1) => add(name)(labels, -by),
      set: (labels, value) => values.set(key(name, labels), value),
    }),
    histogram: () => ({ observe: () => {} }),
    value: (name, labels) => values.get(key(name, labels)) ?? 0,
  };
}
