// The shared-journal example cluster (a journal and meta node, brokers 2 and 3) in a temporary
// directory, each node a process that can be killed with SIGKILL and started again.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CONFIGS = { journal: 'journal.toml', b2: 'broker-2.toml', b3: 'broker-3.toml' };

/** Client ports of the example's brokers. */
export const PORTS = {
  mqtt: [11882, 11883],
  kafka: [19092, 19093],
  amqp: [15672, 15673],
};

export function exampleCluster(root) {
  const bin = join(root, 'packages/server/dist/bin.js');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);
  const dir = mkdtempSync(join(tmpdir(), 'robustmq-crash-'));
  cpSync(join(root, 'packages/server/examples/shared-journal'), dir, { recursive: true });
  const running = new Map();
  return {
    dir,
    start(name) {
      // Appended to: a node's log keeps every run of it, for reading after a loss.
      const out = openSync(join(dir, `${name}.log`), 'a');
      running.set(
        name,
        spawn(process.execPath, [bin, '--config', CONFIGS[name]], { cwd: dir, stdio: ['ignore', out, out] }),
      );
    },
    kill(name) {
      running.get(name)?.kill('SIGKILL');
      running.delete(name);
    },
    killAll() {
      for (const name of [...running.keys()]) this.kill(name);
    },
  };
}
