/**
 * What a user gets from the registry: every public package packed with `npm pack`, installed from
 * the tarballs into an empty directory (third-party packages at the versions the workspace locks),
 * then `npx robustmq-server --version` and a start / health / stop cycle there, under this Node
 * and under Node 24.
 */
import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockLikeWorkspace } from './locked-dependencies.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');

interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
}

const packages = readdirSync(join(ROOT, 'packages'))
  .map((folder) => ({
    folder,
    json: JSON.parse(readFileSync(join(ROOT, 'packages', folder, 'package.json'), 'utf8')) as PackageJson,
  }))
  .filter((p) => !p.json.private);
const serverVersion = packages.find((p) => p.json.name === 'robustmq-server')!.json.version;

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  return stdout;
}

interface Stopped {
  /** The exit code of the process that was started (npx itself, when started through npx). */
  exitCode: number | null;
  ready: unknown;
  /** Log lines the server wrote, up to its last. */
  logs: string[];
  stderr: string;
}

/**
 * Starts the server command in its own process group, waits for `node ready`, checks health,
 * then sends SIGTERM to the whole group, as a terminal's Ctrl-C or a service manager does (npx
 * does not pass a signal sent to it alone on to the server). Resolves once every process of the
 * group has closed its output, i.e. the server itself has exited.
 */
async function startHealthStop(command: string, args: string[], cwd: string): Promise<Stopped> {
  const child = spawn(
    command,
    [
      ...args,
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
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const outputClosed = new Promise<void>((resolve) => child.stdout.on('close', () => resolve()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const line = stdout.split('\n').find((l) => l.includes('"node ready"'));
        if (line)
          resolve(Number((JSON.parse(line) as { listeners: string[] }).listeners[0]!.split(':').pop()));
      });
      void exited.then((code) => reject(new Error(`exited ${code} before ready: ${stderr}`)));
    });
    const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
    const ready: unknown = await response.json();
    expect(response.status).toBe(200);
    process.kill(-child.pid!, 'SIGTERM');
    const exitCode = await exited;
    await outputClosed;
    return { exitCode, ready, logs: stdout.trim().split('\n'), stderr };
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // The group is already gone: the normal case.
    }
  }
}

/** The server's own account of a clean stop: its last line, and its data directory unlocked. */
function expectCleanStop(stopped: Stopped, project: string): void {
  expect(
    JSON.parse(stopped.logs.at(-1)!),
    `logs: ${stopped.logs.map((l) => (JSON.parse(l) as { msg: string }).msg).join(' | ')}; stderr: ${stopped.stderr}`,
  ).toMatchObject({ msg: 'node stopped' });
  expect(existsSync(join(project, 'robustmq-data', 'LOCK'))).toBe(false);
}

describe('published packages', () => {
  const work = mkdtempSync(join(tmpdir(), 'robustmq-pack-'));
  const tarballs = join(work, 'tarballs');
  const project = join(work, 'project');

  beforeAll(async () => {
    mkdirSync(tarballs);
    mkdirSync(project);
    for (const p of packages)
      await npm(['pack', '--pack-destination', tarballs], join(ROOT, 'packages', p.folder));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true }));
    lockLikeWorkspace(ROOT, project);
    const files = readdirSync(tarballs).map((f) => join(tarballs, f));
    await npm(['install', '--no-audit', '--no-fund', ...files], project);
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('packs every public package with only its dist (and bin shims, native sources), README and package.json', async () => {
    expect(readdirSync(tarballs)).toHaveLength(packages.length);
    for (const p of packages) {
      const listing = await npm(['pack', '--dry-run', '--json'], join(ROOT, 'packages', p.folder));
      const files = (JSON.parse(listing) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map(
        (f) => f.path,
      );
      expect(files, p.json.name).toContain('package.json');
      expect(files, p.json.name).toContain('README.md');
      for (const file of files)
        expect(file, p.json.name).toMatch(
          /^(dist\/|bin\/|examples\/|native\/|binding\.gyp$|package\.json$|README\.md$|LICENSE$|CHANGELOG\.md$)/,
        );
      expect(
        files.some((f) => f.endsWith('.test.ts') || f.startsWith('src/')),
        p.json.name,
      ).toBe(false);
    }
  });

  it('installs the third-party versions the workspace lockfile holds, not the registry newest', () => {
    const lockedVersions = (dir: string) =>
      (
        JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as {
          packages: Record<string, { version?: string; dev?: boolean; link?: boolean }>;
        }
      ).packages;
    const workspace = lockedVersions(ROOT);
    const ours = new Set(packages.map((p) => `node_modules/${p.json.name}`));
    const installed = Object.entries(lockedVersions(project)).filter(
      ([path]) => path.startsWith('node_modules/') && !ours.has(path),
    );
    // The S3 client alone brings over a hundred packages.
    expect(installed.length).toBeGreaterThan(100);
    for (const [path, entry] of installed)
      if (workspace[path] && !workspace[path].dev) expect(entry.version, path).toBe(workspace[path].version);
    expect(installed.map(([path]) => path)).toContain('node_modules/@aws-sdk/client-s3');
  });

  it('builds the checksum addon when @robustmq/crc32c is installed from its tarball', async () => {
    const script =
      "const m = await import('@robustmq/crc32c'); " +
      "console.log(JSON.stringify({ loaded: m.nativeLoaded, check: m.crc32c(Buffer.from('123456789')) }));";
    const { stdout } = await run('node', ['--input-type=module', '-e', script], { cwd: project });
    const result = JSON.parse(stdout) as { loaded: boolean; check: number };
    expect(result.check).toBe(0xe3069283);
    // In CI the machine has a compiler, so a missing addon means the install-time build broke.
    if (process.env.CI) expect(result.loaded).toBe(true);
  });

  it('runs `npx robustmq-server --version` and `npx robustmq --version` from the installed tarballs', async () => {
    const { stdout } = await run('npx', ['--no-install', 'robustmq-server', '--version'], { cwd: project });
    expect(stdout.trim()).toBe(serverVersion);
    const cli = await run('npx', ['--no-install', 'robustmq', '--version'], { cwd: project });
    expect(cli.stdout.trim()).toBe(packages.find((p) => p.json.name === '@robustmq/cli')!.json.version);
  });

  it('starts with npx, answers /health/ready, and stops cleanly on SIGTERM', async () => {
    const stopped = await startHealthStop('npx', ['--no-install', 'robustmq-server'], project);
    expect(stopped.ready).toMatchObject({ ready: true, version: serverVersion });
    // The default protocol came from the installed tarballs too.
    expect((stopped.ready as { listeners: unknown[] }).listeners).toContainEqual(
      expect.objectContaining({ protocol: 'mqtt', transport: 'tcp' }),
    );
    expectCleanStop(stopped, project);
  });

  it('does the same under Node 24', async () => {
    const { stdout } = await run('npx', ['-y', 'node@24', '-p', 'process.execPath'], { cwd: work });
    const node24 = stdout.trim();
    const { stdout: version } = await run(node24, ['--version']);
    expect(version.trim()).toMatch(/^v24\./);
    const bin = join(project, 'node_modules', 'robustmq-server', 'dist', 'bin.js');
    const stopped = await startHealthStop(node24, [bin], project);
    expect(stopped.ready).toMatchObject({ ready: true, version: serverVersion });
    expect(stopped.exitCode).toBe(0);
    expectCleanStop(stopped, project);
  });
});
