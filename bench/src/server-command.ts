/** How the benchmarks start `robustmq-server`: the installed package's script under this Node. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Arguments for `process.execPath` that start the server with `args`, after `nodeFlags`. */
export function serverArgs(nodeFlags: readonly string[], args: readonly string[]): string[] {
  const bin = join(dirname(require.resolve('robustmq-server/package.json')), 'dist', 'bin.js');
  return [...nodeFlags, bin, ...args];
}
