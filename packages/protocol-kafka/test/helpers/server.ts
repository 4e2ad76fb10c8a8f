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

export interface KafkaServer {
  /** The Kafka listener's port on 127.0.0.1. */
  port: number;
  /** The MQTT listener's port, when started with `mqtt`. */
  mqttPort?: number;
  httpUrl: string;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** The same lines as written, for what parsing hides (a key written twice). */
  rawLogs: string[];
  /** The Prometheus text of `/metrics`. */
  metrics(): Promise<string>;
  /** Waits until a metric line matching `pattern` shows up (counters are flushed once a second). */
  waitForMetric(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Waits until a log line satisfies `predicate`. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops the server (SIGTERM by default) and removes its directory. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Ends the server (SIGKILL by default) and keeps its directory, for a restart on the same data. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** The server's directory (config and data). */
  dir: string;
  child: ChildProcess;
}

/**
 * Starts a real server process with the Kafka plugin loaded by package name from its config, on
 * loopback and free ports, with a data directory of its own. `kafka` adds lines to `[kafka]`,
 * `extra` adds top-level sections; `dir` starts it again in the directory of a killed one, and
 * `port` on the Kafka port it had, so that its clients find it again. `mqtt` loads the MQTT plugin
 * too (on a free port, `mqttPort`), so Kafka records also go to MQTT subscribers. With `config`,
 * the node starts from that file and those command-line flags instead, as a user starts one.
 */
export async function startServer(
  options: {
    kafka?: string[];
    extra?: string[];
    dir?: string;
    port?: number;
    mqtt?: boolean;
    config?: { file: string; flags: readonly string[] };
  } = {},
): Promise<KafkaServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'robustmq-kafka-test-'));
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
  const rawLogs: string[] = [];
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
          rawLogs.push(line);
          if (entry.msg === 'node ready') resolve(entry);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code} before ready: ${stderr}`)));
  });
  let entry: Record<string, unknown>;
  try {
    entry = await ready;
  } catch (error) {
    // A server that never came up leaves nothing behind (a restart keeps its given directory).
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const ports = new Map(
    (entry.listeners as string[]).map((l) => [l.slice(0, l.lastIndexOf(':')), Number(l.split(':').pop())]),
  );
  const httpUrl = `http://127.0.0.1:${ports.get('admin/http')}`;
  const metrics = async () => (await fetch(`${httpUrl}/metrics`)).text();
  return {
    port: ports.get('kafka/tcp')!,
    mqttPort: ports.get('mqtt/tcp'),
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
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The config file of a node started from options rather than a given file. */
function writeConfig(
  dir: string,
  options: { kafka?: string[]; extra?: string[]; port?: number; mqtt?: boolean },
) {
  writeFileSync(
    join(dir, 'robustmq.toml'),
    [
      'bind = "127.0.0.1"',
      options.mqtt
        ? 'protocols = ["@robustmq/protocol-kafka", "@robustmq/protocol-mqtt"]'
        : 'protocols = ["@robustmq/protocol-kafka"]',
      ...(options.extra ?? []),
      ...(options.mqtt ? ['[mqtt]', 'port = 0'] : []),
      '[http]',
      'port = 0',
      '[log]',
      'format = "json"',
      '[kafka]',
      `port = ${options.port ?? 0}`,
      ...(options.kafka ?? []),
    ].join('\n') + '\n',
  );
}
