/**
 * The three brokers the mqtt suite compares, each a child process on a free loopback port:
 * RobustMQ (the built `robustmq-server` bin, standalone, fresh data dir), Mosquitto (the Debian
 * binary, generated config) and Aedes (npm, on net.createServer). Also what /proc tells about them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverArgs } from './server-command.js';

export type BrokerName = 'robustmq' | 'mosquitto' | 'aedes';
export const BROKER_NAMES: readonly BrokerName[] = ['robustmq', 'mosquitto', 'aedes'];

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const HOST = '127.0.0.1';

export interface RunningBroker {
  readonly name: BrokerName;
  readonly version: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the process (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** The last lines the broker printed, for error messages. */
  output(): string;
}

export interface BrokerOptions {
  /** A scratch directory for data dirs and configs. */
  root: string;
  /** When set, Node brokers run with `--cpu-prof` and write their profile here on exit. */
  cpuProfDir: string | null;
}

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const STOP_GRACE_MS = 15_000;
const START_TIMEOUT_MS = 30_000;
const OUTPUT_TAIL = 4096;

/** Every broker still running, so an exit on error still stops them. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A port nothing listens on right now (the kernel's pick, released again). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * Runs a command through `sh` that first raises the open-file limit to the hard limit, so a
 * broker can hold 10,000 connections.
 */
export function spawnWithFileLimit(command: string, args: readonly string[]): ChildProcess {
  return spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function supervise(name: BrokerName, version: string, port: number, child: ChildProcess): RunningBroker {
  running.add(child);
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => running.delete(child));
  return {
    name,
    version,
    port,
    pid: child.pid ?? -1,
    output: () => tail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitUntilAccepting(broker: RunningBroker, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${broker.name} exited at start:\n${broker.output()}`);
    if (await accepts(broker.port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await broker.stop();
  throw new Error(`${broker.name} did not accept connections within ${START_TIMEOUT_MS / 1000} s`);
}

function nodeFlags(name: BrokerName, options: BrokerOptions): string[] {
  return options.cpuProfDir === null
    ? []
    : // One profile per thread, each named by Node, in a directory per broker and run.
      ['--cpu-prof', `--cpu-prof-dir=${join(options.cpuProfDir, `${name}-${Date.now()}`)}`];
}

/** The version of an installed package, from the package.json beside its main file or above. */
function packageVersion(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version: string;
      };
      if (manifest.name === name) return manifest.version;
    } catch {
      // No package.json at this level: keep going up.
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

function mosquittoVersion(): string {
  const help = spawnSync(MOSQUITTO, ['-h'], { encoding: 'utf8' });
  return /version (\S+)/.exec(help.stdout)?.[1] ?? 'unknown';
}

/** Starts one broker and resolves once it accepts TCP connections. */
export async function startBroker(name: BrokerName, options: BrokerOptions): Promise<RunningBroker> {
  const port = await freePort();
  let child: ChildProcess;
  let version: string;
  switch (name) {
    case 'robustmq': {
      const dataDir = join(options.root, `robustmq-${port}`);
      mkdirSync(dataDir);
      const httpPort = await freePort();
      version = packageVersion('robustmq-server');
      child = spawnWithFileLimit(
        process.execPath,
        serverArgs(nodeFlags(name, options), [
          '--data-dir',
          dataDir,
          '--bind',
          HOST,
          '--http-port',
          String(httpPort),
          '--protocols',
          '@robustmq/protocol-mqtt',
          '--mqtt-port',
          String(port),
          '--log-level',
          'warn',
        ]),
      );
      break;
    }
    case 'mosquitto': {
      if (!existsSync(MOSQUITTO))
        throw new Error(`${MOSQUITTO} not found: install it with \`apt-get install -y mosquitto\``);
      const config = join(options.root, `mosquitto-${port}.conf`);
      writeFileSync(
        config,
        [
          `listener ${port} ${HOST}`,
          'allow_anonymous true',
          'persistence false',
          'set_tcp_nodelay true',
          'log_dest stderr',
          'log_type error',
          '',
        ].join('\n'),
      );
      version = mosquittoVersion();
      child = spawnWithFileLimit(MOSQUITTO, ['-c', config]);
      break;
    }
    case 'aedes':
      version = packageVersion('aedes');
      child = spawnWithFileLimit(process.execPath, [
        ...nodeFlags(name, options),
        join(here, 'mqtt-aedes.js'),
        String(port),
      ]);
      break;
  }
  const broker = supervise(name, version, port, child);
  await waitUntilAccepting(broker, child);
  return broker;
}

/** Resident memory of a process in bytes (VmRSS from /proc/PID/status). */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib) * 1024;
}

const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU time (user + system, every thread) a process has used so far, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * Nanoseconds a process's main thread has spent on a CPU and waiting in the run queue for one
 * (/proc/PID/schedstat): on a shared machine, a broker that waits a lot was short of CPU.
 */
export function schedulerNanoseconds(pid: number): { running: number; waiting: number } {
  const [running, waiting] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
  return { running: running ?? 0, waiting: waiting ?? 0 };
}
