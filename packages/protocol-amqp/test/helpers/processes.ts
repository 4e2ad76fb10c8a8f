import { spawn, type ChildProcess } from 'node:child_process';

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`). */
export function run(command: string, args: string[], timeoutMs = 10_000, input?: string): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // the command may exit without reading it all
      child.stdin.end(input);
    }
  });
}

/** A long-running client process whose output is watched as it comes. */
export class Watched {
  stdout = '';
  readonly exited: Promise<Finished>;
  private readonly child: ChildProcess;
  private stderr = '';

  constructor(command: string, args: string[], timeoutMs = 15_000) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout: this.stdout, stderr: this.stderr });
      }),
    );
  }

  /** Waits until the output contains `text`. */
  async waitFor(text: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes(text)) {
      if (Date.now() > deadline) throw new Error(`no "${text}" in output: ${this.stdout} ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }
}
