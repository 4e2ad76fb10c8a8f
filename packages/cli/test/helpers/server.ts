import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The robustmq-server binary, as a user gets it from npm. */
const SERVER_BIN = join(
  dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json')),
  'dist/bin.js',
);

/** The admin password the test servers start with. */
export const ADMIN_PASSWORD = 'cli-test-admin-pw';

export interface TestServer {
  /** The admin API address. */
  url: string;
  version: string;
  /** Listener ports by `<protocol>/<name>`, e.g. `mqtt/tcp`, `kafka/tcp`. */
  ports: Map<string, number>;
  /** Environment for the CLI: address and admin credentials. */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/**
 * Starts a real robustmq-server on loopback and free ports, in a directory of its own, with the
 * given protocol plugins (`protocolSettings` go into each one's section) and the bootstrap admin
 * password {@link ADMIN_PASSWORD}.
 */
export async function startServer(
  options: { protocols?: string[]; protocolSettings?: string[]; https?: boolean } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'robustmq-cli-test-'));
  // Over HTTPS: a CA and a certificate for 127.0.0.1 made with the server's own `certs` command.
  if (options.https) {
    execFileSync(process.execPath, [SERVER_BIN, 'certs', 'ca', '--dir', join(dir, 'certs')]);
    execFileSync(process.execPath, [
      SERVER_BIN,
      'certs',
      'node',
      '--dir',
      join(dir, 'certs'),
      '--name',
      'admin',
      '--host',
      '127.0.0.1',
    ]);
  }
  const protocols = options.protocols ?? ['@robustmq/protocol-mqtt'];
  const sections = protocols.map((p) => p.replace(/^@robustmq\/protocol-/, ''));
  writeFileSync(
    join(dir, 'robustmq.toml'),
    [
      'bind = "127.0.0.1"',
      `protocols = ${JSON.stringify(protocols)}`,
      '[http]',
      'port = 0',
      ...(options.https ? ['tls_cert = "certs/admin.pem"', 'tls_key = "certs/admin-key.pem"'] : []),
      '[log]',
      'format = "json"',
      '[admin]',
      `password = "${ADMIN_PASSWORD}"`,
      ...sections.flatMap((s) => [`[${s}]`, 'port = 0', ...(options.protocolSettings ?? [])]),
    ].join('\n') + '\n',
  );
  const child: ChildProcess = spawn(process.execPath, [SERVER_BIN, '--config', 'robustmq.toml'], {
    cwd: dir,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_'))),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (entry.msg === 'node ready') resolve(entry);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then(() => reject(new Error(`server exited before ready: ${stderr}`)));
  });
  const ports = new Map(
    (ready.listeners as string[]).map((l) => [l.slice(0, l.lastIndexOf(':')), Number(l.split(':').pop())]),
  );
  const url = `${options.https ? 'https' : 'http'}://127.0.0.1:${ports.get('admin/http')}`;
  return {
    url,
    version: ready.version as string,
    ports,
    env: {
      ROBUSTMQ_API_URL: url,
      ROBUSTMQ_USER: 'admin',
      ROBUSTMQ_PASSWORD: ADMIN_PASSWORD,
      ...(options.https ? { NODE_EXTRA_CA_CERTS: join(dir, 'certs', 'ca.pem') } : {}),
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
