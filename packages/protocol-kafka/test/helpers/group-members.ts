import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MEMBER_SCRIPT = fileURLToPath(new URL('./group-member.mjs', import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));

export interface MemberEvent {
  name: string;
  event: 'joined' | 'message';
  partitions?: number[];
  partition?: number;
  offset?: number;
  value?: string;
}

/** A group member running in a child process, with everything it printed. */
export class Member {
  readonly events: MemberEvent[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(
    broker: string,
    topic: string,
    group: string,
    readonly name: string,
    retries = 20,
  ) {
    this.child = spawn(process.execPath, [MEMBER_SCRIPT, broker, topic, group, name, String(retries)], {
      cwd: PACKAGE_DIR,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffered = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        this.events.push(JSON.parse(buffered.slice(0, nl)) as MemberEvent);
        buffered = buffered.slice(nl + 1);
      }
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** The partitions of its latest assignment, or null before its first one. */
  assignment(): number[] | null {
    const joined = this.events.filter((e) => e.event === 'joined');
    return joined.length === 0 ? null : joined[joined.length - 1]!.partitions!;
  }

  values(): string[] {
    return this.events.filter((e) => e.event === 'message').map((e) => e.value!);
  }
}

export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
