import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The robustmq-server binary, as a user gets it from npm. */
const SERVER_BIN = join(
  dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json')),
  'dist/bin.js',
);

export interface MqttServer {
  /** The MQTT listener's port on 127.0.0.1. */
  port: number;
  /** Every listener's port, by `<protocol>/<listener>` (e.g. `kafka/tcp`). */
  ports: ReadonlyMap<string, number>;
  httpUrl: string;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** The Prometheus text of `/metrics`. */
  metrics(): Promise<string>;
  /** Waits until a metric line matching `pattern` shows up (counters are flushed once a second). */
  waitForMetric(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Waits until a log line satisfies `predicate`. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops the server (SIGTERM by default) and removes its directory. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Kills the server with SIGKILL and keeps its directory, for a restart on the same data. */
  kill(): Promise<void>;
  /** The server's directory (config and data). */
  dir: string;
  child: ChildProcess;
}

/**
 * Starts a real server process with the MQTT plugin loaded by package name from its config, on
 * loopback and free ports, with a data directory of its own. `mqtt` adds lines to `[mqtt]`,
 * `extra` adds top-level sections; `dir` starts it again in the directory of a killed one. With
 * `config`, the node starts from that file and those command-line flags instead, as a user
 * starts one.
 */
export async function startServer(
  options: {
    mqtt?: string[];
    extra?: string[];
    dir?: string;
    config?: { file: string; flags: readonly string[] };
  } = {},
): Promise<MqttServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'robustmq-mqtt-test-'));
  if (!options.config) writeConfig(dir, options);
  const args = options.config
    ? ['--config', options.config.file, ...options.config.flags]
    : ['--config', 'robustmq.toml'];
  const child = spawn(process.execPath, [SERVER_BIN, ...args], {
    cwd: dir,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_'))),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let buffered = '';
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'node ready') resolve(entry);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code} before ready: ${stderr}`)));
  });
  const entry = await ready;
  const ports = new Map(
    (entry.listeners as string[]).map((l) => [l.slice(0, l.lastIndexOf(':')), Number(l.split(':').pop())]),
  );
  const httpUrl = `http://127.0.0.1:${ports.get('admin/http')}`;
  const metrics = async () => (await fetch(`${httpUrl}/metrics`)).text();
  return {
    port: ports.get('mqtt/tcp')!,
    ports,
    dir,
    httpUrl,
    logs,
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
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
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
function writeConfig(dir: string, options: { mqtt?: string[]; extra?: string[] }): void {
  writeFileSync(
    join(dir, 'robustmq.toml'),
    [
      'bind = "127.0.0.1"',
      'protocols = ["@robustmq/protocol-mqtt"]',
      ...(options.extra ?? []),
      '[http]',
      'port = 0',
      '[log]',
      'format = "json"',
      '[mqtt]',
      'port = 0',
      ...(options.mqtt ?? []),
    ].join('\n') + '\n',
  );
}
