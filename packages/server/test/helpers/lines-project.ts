import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './server-process.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/robustmq-protocol-lines', import.meta.url));

/**
 * A user's project directory with the test-only `robustmq-protocol-lines` package installed in
 * its node_modules, as `npm install robustmq-protocol-lines` would leave it.
 */
export function linesProject(): {
  path: string;
  remove: () => void;
  writeConfig: (name: string, lines: string[]) => void;
} {
  const dir = tempDir('project');
  mkdirSync(join(dir.path, 'node_modules'));
  symlinkSync(FIXTURE, join(dir.path, 'node_modules', 'robustmq-protocol-lines'), 'dir');
  return {
    ...dir,
    writeConfig: (name, lines) => writeFileSync(join(dir.path, name), lines.join('\n') + '\n'),
  };
}
