/**
 * The README's "First steps", as a newcomer runs them: a fresh node with no admin password set,
 * the bootstrap password read from its stderr, then every command of the walkthrough's shell
 * blocks, in order, through the built `robustmq` bin, with its output and exit code checked. The
 * commands are read from README.md, so the test fails when the README and the checks below part.
 * Only the addresses differ: the node listens on free ports, so each command gets the admin API
 * through ROBUSTMQ_API_URL and its broker through `-b` / `-u`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SERVER_BIN = join(ROOT, 'packages/server/dist/bin.js');
const CLI_BIN = join(ROOT, 'packages/cli/bin/robustmq.js');

/** The placeholder the README's `export` line holds for the printed password. */
const PASSWORD_PLACEHOLDER = '<the bootstrap password>';

/** One line of a shell block: its text without the comment, and its words as sh splits them. */
interface Line {
  text: string;
  words: string[];
}

/**
 * Splits one shell line into words as sh does for the README's lines: single and double quotes,
 * `|` as a word of its own, and `#` at the start of a word beginning a comment.
 */
function shellLine(line: string): Line {
  const words: string[] = [];
  let end = line.length;
  let word: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unclosed quote in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === '#' && word === null) {
      end = i;
      break;
    } else if (c === '|' && word === null) {
      words.push(c);
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== null) words.push(word);
  return { text: line.slice(0, end).trim(), words };
}

/** The lines of the `sh` blocks of README.md's "First steps". */
function walkthrough(): Line[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## First steps\n');
  expect(start, 'README.md has a "First steps" section').toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const lines: Line[] = [];
  for (const block of section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    for (const line of block[1]!.split('\n')) {
      const parsed = shellLine(line);
      if (parsed.words.length) lines.push(parsed);
    }
  }
  return lines;
}

/** Rows of a table the CLI printed (a header line, then one line per row), by column title. */
function table(text: string): Array<Record<string, string>> {
  const [header, ...rows] = text.trim().split('\n');
  if (!header || !rows.length) return [];
  const titles = [...header.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ title: m[0], at: m.index }));
  return rows
    .filter((row) => row.trim() !== '')
    .map((row) =>
      Object.fromEntries(
        titles.map((t, i) => [t.title, row.slice(t.at, titles[i + 1]?.at ?? row.length).trim()]),
      ),
    );
}

/** This process's environment without any ROBUSTMQ_* setting: a shell where none was exported. */
function withoutRobustmqSettings(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_')));
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Node {
  child: ChildProcess;
  dir: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Listener ports by `<protocol>/<name>`, from the "node ready" log line. */
  ports: Map<string, number>;
}

/** Starts the built server as `npm start` does, on loopback and free ports, in a fresh directory. */
async function startNode(): Promise<Node> {
  const dir = mkdtempSync(join(tmpdir(), 'robustmq-walkthrough-'));
  const child = spawn(
    process.execPath,
    [
      SERVER_BIN,
      '--data-dir',
      join(dir, 'robustmq-data'),
      '--bind',
      '127.0.0.1',
      '--http-port',
      '0',
      '--mqtt-port',
      '0',
      '--kafka-port',
      '0',
      '--amqp-port',
      '0',
      '--set',
      'log.format="json"',
    ],
    {
      cwd: dir,
      // No ROBUSTMQ_ADMIN_PASSWORD (or any other setting) from the caller: a first start as the
      // README describes it.
      env: withoutRobustmqSettings(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = await new Promise<{ listeners: string[] }>((resolve, reject) => {
    const look = () => {
      const line = stdout.split('\n').find((l) => l.includes('"node ready"'));
      if (line) resolve(JSON.parse(line) as { listeners: string[] });
    };
    child.stdout.on('data', look);
    void exited.then((code) => reject(new Error(`server exited ${code} before ready: ${stderr}`)));
  });
  const ports = new Map(
    ready.listeners.map((l) => [l.slice(0, l.lastIndexOf(':')), Number(l.slice(l.lastIndexOf(':') + 1))]),
  );
  return { child, dir, stdout: () => stdout, stderr: () => stderr, exited, ports };
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('README "First steps"', () => {
  const lines = walkthrough();
  let next = 0;
  let node: Node;
  let api: string;
  let password: string;
  /** The second terminal's environment: the README's `export` line, and the node's address. */
  let terminal: NodeJS.ProcessEnv;
  let subscriber: { child: ChildProcess; done: Promise<Result> } | undefined;

  /** The next line of the walkthrough, which must be `expected`; returns its words. */
  function step(expected: string): string[] {
    const line = lines[next];
    expect(line?.text, `README "First steps" command ${next + 1}`).toBe(expected);
    next++;
    return line!.words;
  }

  /** `npx robustmq …` as the built bin, its broker pointed at the node's free port. */
  function argv(words: string[]): string[] {
    expect(words.slice(0, 2)).toEqual(['npx', 'robustmq']);
    const [group, command] = words.slice(2, 4);
    const port = (name: string) => node.ports.get(name)!;
    const broker: Record<string, string[]> = {
      'mqtt pub': ['-b', `mqtt://127.0.0.1:${port('mqtt/tcp')}`],
      'mqtt sub': ['-b', `mqtt://127.0.0.1:${port('mqtt/tcp')}`],
      'kafka produce': ['-b', `127.0.0.1:${port('kafka/tcp')}`],
      'kafka consume': ['-b', `127.0.0.1:${port('kafka/tcp')}`],
      'amqp send': ['-u', `amqp://127.0.0.1:${port('amqp/tcp')}`],
      'amqp receive': ['-u', `amqp://127.0.0.1:${port('amqp/tcp')}`],
    };
    const extra = broker[`${group} ${command}`];
    return extra ? [CLI_BIN, group!, command!, ...extra, ...words.slice(4)] : [CLI_BIN, ...words.slice(2)];
  }

  function spawnCli(words: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<Result> } {
    const child = spawn(process.execPath, argv(words), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<Result>((resolve) =>
      child.on('close', (code) => resolve({ code, stdout, stderr })),
    );
    return { child, done };
  }

  /** Runs a walkthrough line in the second terminal; it must succeed. */
  async function run(words: string[]): Promise<string> {
    const result = await spawnCli(words, terminal).done;
    expect(result.code, `${words.join(' ')}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  beforeAll(async () => {
    node = await startNode();
    api = `http://127.0.0.1:${node.ports.get('admin/http')}`;
    await eventually('the bootstrap password on stderr', () =>
      /bootstrap admin password: /.test(node.stderr()),
    );
    password = /bootstrap admin password: (\S+)/.exec(node.stderr())![1]!;
  });

  afterAll(async () => {
    subscriber?.child.kill();
    if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
    await node.exited;
    rmSync(node.dir, { recursive: true, force: true });
  });

  it('has `npx robustmq` in the repository run the built CLI, as the README says', () => {
    expect(realpathSync(join(ROOT, 'node_modules/.bin/robustmq'))).toBe(realpathSync(CLI_BIN));
  });

  it('prints the bootstrap admin password once, on stderr only', () => {
    expect(node.stderr().match(/bootstrap admin password/g)).toHaveLength(1);
    expect(node.stdout()).not.toContain(password);
  });

  it('logs the CLI in with the README environment and shows status', async () => {
    const [command, ...assignments] = step(
      `export ROBUSTMQ_USER=admin ROBUSTMQ_PASSWORD='${PASSWORD_PLACEHOLDER}'`,
    );
    expect(command).toBe('export');
    const exported = Object.fromEntries(
      assignments.map((a) => {
        const [name, value] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
        return [name, value === PASSWORD_PLACEHOLDER ? password : value];
      }),
    );
    terminal = {
      ...withoutRobustmqSettings(),
      ROBUSTMQ_API_URL: api,
      ...exported,
    };

    const status = await run(step('npx robustmq status'));
    expect(status).toMatch(/^status:\s+ready$/m);
    const listeners = table(status.slice(status.indexOf('PROTOCOL')));
    expect(listeners.map((l) => l.PROTOCOL).sort()).toEqual(['admin', 'amqp', 'kafka', 'mqtt']);
  });

  it('creates a user and a topic', async () => {
    expect(await run(step('npx robustmq user create alice --new-password alice-pw'))).toContain(
      'created user alice',
    );
    const users = table(await run(step('npx robustmq user list')));
    expect(users.map((u) => [u.NAME, u.SUPERUSER])).toEqual([
      ['admin', 'yes'],
      ['alice', 'no'],
    ]);

    expect(await run(step('npx robustmq topic create orders --partitions 3'))).toContain(
      'created topic orders',
    );
    const described = await run(step('npx robustmq topic describe orders'));
    expect(described).toMatch(/^partitions:\s+3$/m);
    const partitions = table(described.slice(described.indexOf('PARTITION')));
    expect(partitions.map((p) => [p.PARTITION, p['START OFFSET'], p['NEXT OFFSET']])).toEqual([
      ['0', '0', '0'],
      ['1', '0', '0'],
      ['2', '0', '0'],
    ]);
  });

  it('delivers an MQTT message from pub to sub', async () => {
    // A third terminal: nothing exported there, the user given on the command line.
    subscriber = spawnCli(
      step("npx robustmq mqtt sub --user alice --password alice-pw -t 'sensors/#' -v -n 1"),
      {
        ...withoutRobustmqSettings(),
        ROBUSTMQ_API_URL: api,
      },
    );
    const clients = step('npx robustmq mqtt clients');
    await eventually("alice's subscription in `mqtt clients`", async () =>
      table(await run(clients)).some((c) => c.USERNAME === 'alice' && c.SUBSCRIPTIONS === '1'),
    );
    await run(step('npx robustmq mqtt pub -t sensors/kitchen/temp 21.5'));
    const received = await subscriber.done;
    expect(received.code, received.stderr).toBe(0);
    expect(received.stdout).toBe('sensors/kitchen/temp 21.5\n');
  });

  it('consumes Kafka records with a group and shows its lag', async () => {
    await run(step("npx robustmq kafka produce -t orders -k customer-1 'first order' 'second order'"));
    expect(await run(step('npx robustmq kafka consume -t orders -g billing --from-beginning -n 2'))).toBe(
      'first order\nsecond order\n',
    );
    const lagOf = (described: string) => {
      const offsets = table(
        described.slice(described.indexOf('\nOFFSETS\n') + 9, described.indexOf('\n\ntotal lag')),
      );
      expect(offsets.length, described).toBeGreaterThan(0);
      return { rows: offsets.map((o) => Number(o.LAG)), total: /^total lag: (\d+)$/m.exec(described)?.[1] };
    };
    const caughtUp = lagOf(await run(step('npx robustmq kafka groups describe billing')));
    expect(caughtUp.total).toBe('0');
    expect(caughtUp.rows.every((lag) => lag === 0)).toBe(true);

    await run(step("npx robustmq kafka produce -t orders -k customer-1 'third order'"));
    const behind = lagOf(await run(step('npx robustmq kafka groups describe billing')));
    expect(behind.total).toBe('1');
  });

  it('sends and receives AMQP messages through a queue', async () => {
    await run(step('npx robustmq amqp send -a jobs j1 j2'));
    const queues = table(await run(step('npx robustmq amqp queues')));
    expect(queues.find((q) => q.ID === 'jobs')).toMatchObject({ KIND: 'queue', DEPTH: '2' });
    expect(await run(step('npx robustmq amqp receive -a jobs -n 2'))).toBe('j1\nj2\n');
  });

  it('serves the metrics the README greps for', async () => {
    const words = lines[next++]!.words;
    expect(words.slice(0, 3)).toEqual(['curl', '-s', 'localhost:58080/metrics']);
    expect(words.slice(3, 6)).toEqual(['|', 'grep', '-E']);
    const pattern = words[6]!;
    // `^prefix(a|b|c)suffix`: each alternative is one metric the reader should see.
    const parts = /^\^(\w*)\(([\w|]+)\)(\w*)$/.exec(pattern);
    expect(parts, pattern).not.toBeNull();
    const names = parts![2]!.split('|').map((alternative) => parts![1]! + alternative + parts![3]!);

    // Every step above moved messages through each protocol. Plugins move their counts into the
    // registry once a second (AMQP batches them), so a scrape right after the last step may be early.
    const highest = async (name: string): Promise<number> => {
      const response = await fetch(`${api}/metrics`);
      expect(response.status).toBe(200);
      const samples = (await response.text())
        .split('\n')
        .filter((l) => new RegExp(pattern).test(l))
        .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
      expect(samples.length, name).toBeGreaterThan(0);
      return Math.max(...samples.map((l) => Number(l.split(' ').pop())));
    };
    for (const name of names) {
      await expect.poll(() => highest(name), { timeout: 5000, interval: 250 }).toBeGreaterThan(0);
    }
  });

  it('ran every line of the walkthrough, and the node stops cleanly', async () => {
    expect(lines.slice(next).map((l) => l.text)).toEqual([]);
    node.child.kill('SIGTERM');
    expect(await node.exited).toBe(0);
  });
});
