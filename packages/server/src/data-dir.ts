import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StartupError } from './startup-error.js';

/** The node's data directory, locked so that two nodes never share it. */
export interface DataDir {
  path: string;
  release(): void;
}

/**
/** Data directories this process has locked, so a second lock of one in this process is refused. */
const lockedHere = new Set<string>();

/**
 * Creates `path` if needed and takes its `LOCK` file. A lock left by a process that no longer
 * exists (after kill -9) is taken over; one held by a live process stops start-up. A lock naming
 * this process's own pid, which it did not take, was left by an earlier process that had the same
 * pid (in a container the node is pid 1 after every restart), so it is taken over too.
 */
export function lockDataDir(path: string): DataDir {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    throw new StartupError(`cannot create data directory ${path}: ${(error as NodeJS.ErrnoException).code}`);
  }
  const lockFile = join(path, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      lockedHere.add(path);
      return {
        path,
        release: () => {
          lockedHere.delete(path);
          rmSync(lockFile, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StartupError(
          `cannot lock data directory ${path}: ${(error as NodeJS.ErrnoException).code}`,
        );
      }
      const holder = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
      // A lock naming this process is held only if this process took it.
      const held = holder === process.pid ? lockedHere.has(path) : isAlive(holder);
      if (Number.isInteger(holder) && held) {
        throw new StartupError(`data directory ${path} is in use by process ${holder}`);
      }
      rmSync(lockFile, { force: true });
    }
  }
  throw new StartupError(`cannot lock data directory ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * Whether `pid` has exited and waits only for its parent to reap it (Linux): a node just killed
 * with kill -9 stays so for a moment, or for good under a parent that does not reap.
 */
function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // "pid (command) state ...": the command may hold spaces and parentheses, so read after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}
