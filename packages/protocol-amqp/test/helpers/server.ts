import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The robustmq-server binary, as a user gets it from npm. */
const SERVER_BIN = join(
  dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json')),
  'dist/bin.js',
);

/** This package, which the server loads by name from the config directory's node_modules. */
const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface AmqpServer {
  /** The AMQP listener's port on 127.0.0.1. */
  port: number;
  /** The AMQPS listener's port, when `tls` is listed. */
  tlsPort: number | undefined;
  httpUrl: string;
  logs: Array<Record<string, unknown>>;
  /** The same lines as written, for what parsing hides (a key written twice). */
  rawLogs: string[];
  metrics(): Promise<string>;
  /** Waits until a metric line matching `pattern` shows up (counters are flushed once a second). */
  waitForMetric(pattern: RegExp, timeoutMs?: number): Promise<string>;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops the server (SIGTERM) and removes its directory. */
  stop(): Promise<number | null>;
  /** Kills the server with SIGKILL and keeps its directory, for a restart on the same data. */
  kill(): Promise<void>;
  dir: string;
  child: ChildProcess;
}

/**
 * Starts a real server process with the AMQP plugin loaded by package name from its config, on
 * loopback and free ports, with a data directory of its own. `amqp` adds lines to `[amqp]`;
 * `dir` starts it again in the directory of a killed one. With `config`, the node starts from that
 * file and those command-line flags instead, as a user starts the examples.
 */
export async function startServer(
  options: {
    amqp?: string[];
    extra?: string[];
    dir?: string;
    env?: Record<string, string>;
    config?: { file: string; flags: readonly string[] };
  } = {},
): Promise<AmqpServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'robustmq-amqp-test-'));
  if (!options.dir && !options.config) {
    mkdirSync(join(dir, 'node_modules/@robustmq'), { recursive: true });
    symlinkSync(PACKAGE_DIR, join(dir, 'node_modules/@robustmq/protocol-amqp'), 'dir');
  }
  if (!options.config) writeConfig(dir, options);
  const args = options.config
    ? ['--config', options.config.file, ...options.config.flags]
    : ['--config', 'robustmq.toml'];
  const child = spawn(process.execPath, [SERVER_BIN, ...args], {
    cwd: dir,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_'))),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const rawLogs: string[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  let buffered = '';
  const ready = new Promise<Record<string, unknown>>((done, fail) => {
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          rawLogs.push(line);
          if (entry.msg === 'node ready') done(entry);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then((code) => fail(new Error(`server exited with ${code} before ready: ${stderr}`)));
  });
  const entry = await ready;
  const ports = new Map(
    (entry.listeners as string[]).map((l) => [l.slice(0, l.lastIndexOf(':')), Number(l.split(':').pop())]),
  );
  const httpUrl = `http://127.0.0.1:${ports.get('admin/http')}`;
  const metrics = async () => (await fetch(`${httpUrl}/metrics`)).text();
  return {
    port: ports.get('amqp/tcp')!,
    tlsPort: ports.get('amqp/tls'),
    dir,
    httpUrl,
    logs,
    rawLogs,
    child,
    metrics,
    async waitForMetric(pattern, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = await metrics();
        const line = text.split('\n').find((l) => pattern.test(l));
        if (line) return line;
        if (Date.now() > deadline) throw new Error(`no metric matching ${pattern}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async waitForLog(predicate, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!logs.some(predicate)) {
        if (Date.now() > deadline) throw new Error('no such log line');
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The config file of a node started from options rather than a given file. */
function writeConfig(dir: string, options: { amqp?: string[]; extra?: string[] }): void {
  writeFileSync(
    join(dir, 'robustmq.toml'),
    [
      'bind = "127.0.0.1"',
      'protocols = ["@robustmq/protocol-amqp"]',
      ...(options.extra ?? []),
      '[http]',
      'port = 0',
      '[log]',
      'format = "json"',
      '[amqp]',
      'port = 0',
      'tls_port = 0',
      ...(options.amqp ?? []),
    ].join('\n') + '\n',
  );
}
