/**
 * A lockfile for a project that installs our tarballs, holding the third-party versions the
 * workspace's own lockfile holds. Without it, the install takes whatever the registry lists as
 * newest that minute, and a registry that lists a package before its new dependency (seen: an
 * `@aws-sdk/client-s3` whose `@aws-sdk/checksums` was not there yet) fails a run that has nothing
 * to do with our packaging. The versions here were installed by `npm ci` in the same run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  dev?: boolean;
  link?: boolean;
  [field: string]: unknown;
}

interface Lockfile {
  name: string;
  lockfileVersion: number;
  requires?: boolean;
  packages: Record<string, LockEntry>;
}

/**
 * Writes `package-lock.json` into `project` (whose `package.json` exists) with every entry of the
 * workspace lockfile at `root` that a published package can need: hoisted third-party packages
 * that are not only for development. Our own packages are left for `npm install` to add from
 * their tarballs; entries nothing depends on are dropped by it.
 */
export function lockLikeWorkspace(root: string, project: string): void {
  const workspace = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as Lockfile;
  const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { name: string };
  const packages: Record<string, LockEntry> = { '': { name: manifest.name } };
  for (const [path, entry] of Object.entries(workspace.packages)) {
    if (!path.startsWith('node_modules/') || entry.dev || entry.link) continue;
    packages[path] = entry;
  }
  const lockfile: Lockfile = {
    name: manifest.name,
    lockfileVersion: workspace.lockfileVersion,
    requires: true,
    packages,
  };
  writeFileSync(join(project, 'package-lock.json'), JSON.stringify(lockfile, null, 2));
}
