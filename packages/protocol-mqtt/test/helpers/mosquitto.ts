import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';

/** Debian's mosquitto broker as the remote end of the bridges. */
const MOSQUITTO = '/usr/sbin/mosquitto';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A mosquitto process with persistence in a temp dir: `open` lets anyone in, `locked` nobody
 * (no password file). Its log goes to stderr (unbuffered), kept in `log`.
 */
export class Mosquitto {
  log = '';
  private child: ChildProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly open: number,
    readonly locked: number,
  ) {}

  static async create(): Promise<Mosquitto> {
    const dir = mkdtempSync(join(tmpdir(), 'robustmq-bridge-mosquitto-'));
    // Started as root, mosquitto runs as the user "mosquitto", which must write its database here.
    chmodSync(dir, 0o777);
    const mosquitto = new Mosquitto(dir, await freePort(), await freePort());
    writeFileSync(
      join(dir, 'mosquitto.conf'),
      [
        'per_listener_settings true',
        'persistence true',
        `persistence_location ${dir}/`,
        'log_dest stderr',
        'log_type all',
        `listener ${mosquitto.open} 127.0.0.1`,
        'allow_anonymous true',
        `listener ${mosquitto.locked} 127.0.0.1`,
        'allow_anonymous false',
      ].join('\n') + '\n',
    );
    await mosquitto.start();
    return mosquitto;
  }

  /** Starts it and resolves once it accepts connections. */
  async start(): Promise<void> {
    const child = spawn(MOSQUITTO, ['-c', join(this.dir, 'mosquitto.conf')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        const probe = await mqtt.connectAsync(`mqtt://127.0.0.1:${this.open}`, {
          reconnectPeriod: 0,
          connectTimeout: 1000,
        });
        await probe.endAsync();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Stops it (SIGTERM: it saves its sessions). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
