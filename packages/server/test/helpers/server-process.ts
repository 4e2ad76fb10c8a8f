import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Port of `protocol/listener`, e.g. `admin/http`, `lines/tcp`. */
  port(listener: string): number;
  httpUrl: string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export interface RunOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  node?: string;
  bin?: string;
}

/** Runs the server binary to completion (for runs expected to fail or print and exit). */
export function runServer(
  options: RunOptions,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnServer(options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

function spawnServer(options: RunOptions): ChildProcess {
  return spawn(options.node ?? process.execPath, [options.bin ?? BIN, ...(options.args ?? [])], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...cleanEnv(), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The parent's environment without ROBUSTMQ_* settings, so a developer's shell cannot leak in. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_')));
}

/** Starts the server and waits until it logs `node ready` (or exits, which rejects). */
export async function startServer(options: RunOptions): Promise<ServerProcess> {
  const child = spawnServer(options);
  const logs: Array<Record<string, unknown>> = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let buffered = '';
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(entry);
        if (entry.msg === 'node ready') resolve(entry);
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code} before ready: ${err}`)));
  });
  const entry = await ready;
  const ports = new Map<string, number>();
  for (const l of entry.listeners as string[]) {
    const cut = l.lastIndexOf(':');
    ports.set(l.slice(0, cut), Number(l.slice(cut + 1)));
  }
  const port = (listener: string) => {
    const p = ports.get(listener);
    if (p === undefined) throw new Error(`no listener ${listener}; have ${[...ports.keys()].join(', ')}`);
    return p;
  };
  return {
    child,
    logs,
    stderr: () => err,
    port,
    httpUrl: `http://127.0.0.1:${port('admin/http')}`,
    exited,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `robustmq-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Every listener of a node on a free port, and JSON logs at info. */
const FREE_PORTS_AND_JSON_LOGS = [
  '--http-port',
  '0',
  '--mqtt-port',
  '0',
  '--kafka-port',
  '0',
  '--amqp-port',
  '0',
  '--log-level',
  'info',
  '--set',
  'log.format="json"',
];

/** Flags that keep a test server on loopback, on free ports, with its own data directory. */
export function isolatedArgs(dataDir: string): string[] {
  return ['--bind', '127.0.0.1', '--data-dir', dataDir, ...FREE_PORTS_AND_JSON_LOGS];
}

/** A free loopback port, found by binding port 0 and letting go. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `count` free loopback ports, all different. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}

/** The three-node cluster a user starts from `examples/cluster`. */
const CLUSTER_EXAMPLE = fileURLToPath(new URL('../../examples/cluster', import.meta.url));

/**
 * Flags that start node `id` (1 to 3) of `examples/cluster` here: its data in `dataDir`, its RPC on
 * `rpcPorts[id - 1]` (the group's members on all of them), every other port free, JSON logs, and a
 * Raft tick of 50 ms.
 */
export function exampleClusterArgs(id: number, rpcPorts: readonly number[], dataDir: string): string[] {
  const metaNodes = rpcPorts.map((port, i) => `"${i + 1}@127.0.0.1:${port}"`).join(', ');
  return [
    '--config',
    join(CLUSTER_EXAMPLE, `node-${id}.toml`),
    '--data-dir',
    join(dataDir, `node-${id}`),
    ...FREE_PORTS_AND_JSON_LOGS,
    '--set',
    `rpc.port=${rpcPorts[id - 1]}`,
    '--set',
    `cluster.meta_nodes=[${metaNodes}]`,
    '--set',
    'cluster.tick_ms=50',
  ];
}
