import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The robustmq-server binary, as a user gets it from npm. */
const SERVER_BIN = join(
  dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json')),
  'dist/bin.js',
);

export interface Server {
  /** The Kafka listener, `127.0.0.1:<port>`. */
  broker: string;
  /** The server's directory; its data is under `data/`. */
  dir: string;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Stops the server with SIGTERM and waits for it; the directory stays, for a restart. */
  stop(): Promise<void>;
}

/**
 * Starts a real server process with the Kafka plugin on a free port, in `dir` (a new temp dir
 * when not given), with the storage engine `engine` loaded by package name.
 */
export async function startServer(options: { engine: string; dir?: string }): Promise<Server> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'robustmq-core-test-'));
  writeFileSync(
    join(dir, 'robustmq.toml'),
    [
      'bind = "127.0.0.1"',
      'data_dir = "data"',
      'protocols = ["@robustmq/protocol-kafka"]',
      '[storage]',
      `engine = "${options.engine}"`,
      '[http]',
      'port = 0',
      '[log]',
      'format = "json"',
      '[kafka]',
      'port = 0',
    ].join('\n') + '\n',
  );
  const child: ChildProcess = spawn(process.execPath, [SERVER_BIN, '--config', 'robustmq.toml'], {
    cwd: dir,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_'))),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let buffered = '';
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
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
    void exited.then(() => reject(new Error(`server exited before ready: ${stderr}`)));
  });
  const entry = await ready;
  const kafka = (entry.listeners as string[]).find((l) => l.startsWith('kafka/tcp:'));
  return {
    broker: `127.0.0.1:${kafka?.split(':').pop()}`,
    dir,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Removes a server's directory. */
export function removeServerDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs kcat (librdkafka's command-line client) and returns its exit code and output. */
export function kcat(
  args: string[],
  input?: string,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('kcat', args, { input, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Runs a kafka-python (Debian's python3-kafka) admin call against `broker`: `create` makes one
 * topic, `topics` lists them. Answers `{ ok: true, topics? }` or `{ ok: false, error, message }`
 * with the client's error class (e.g. `InvalidRequestError`).
 */
export function kafkaPythonAdmin(
  broker: string,
  call: { create: { name: string; partitions: number } } | { topics: true },
): { ok: boolean; error?: string; message?: string; topics?: string[] } {
  const script = `
import json, sys
from kafka.admin import KafkaAdminClient, NewTopic
call = json.loads(sys.argv[2])
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=60000)
try:
    if 'create' in call:
        admin.create_topics([NewTopic(call['create']['name'], call['create']['partitions'], 1)], timeout_ms=60000)
        print(json.dumps({'ok': True}))
    else:
        print(json.dumps({'ok': True, 'topics': sorted(admin.list_topics())}))
except Exception as error:
    print(json.dumps({'ok': False, 'error': type(error).__name__, 'message': str(error)}))
finally:
    admin.close()
`;
  const result = spawnSync('/usr/bin/python3', ['-c', script, broker, JSON.stringify(call)], {
    encoding: 'utf8',
    timeout: 90_000,
  });
  const last = result.stdout.trim().split('\n').pop() ?? '';
  if (result.status !== 0 || last === '') {
    throw new Error(`kafka-python failed (${String(result.status)}): ${result.stderr}`);
  }
  return JSON.parse(last) as { ok: boolean; error?: string; message?: string; topics?: string[] };
}
