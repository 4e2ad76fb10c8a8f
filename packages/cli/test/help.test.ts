import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/program.js';
import { run } from './helpers/cli.js';

/** Every command path of the tree, e.g. `topic create`, `kafka groups reset-offsets`. */
function commandPaths(): string[][] {
  const paths: string[][] = [];
  const visit = (command: ReturnType<typeof buildProgram>, path: string[]) => {
    for (const sub of command.commands) {
      paths.push([...path, sub.name()]);
      visit(sub, [...path, sub.name()]);
    }
  };
  visit(buildProgram(), []);
  return paths;
}

describe('robustmq --help', () => {
  it('answers --help on every command with its usage, exit 0', async () => {
    const paths = commandPaths();
    expect(paths.length).toBeGreaterThan(40);
    // A few at a time: each is a process start.
    for (let i = 0; i < paths.length; i += 4) {
      await Promise.all(
        paths.slice(i, i + 4).map(async (path) => {
          const result = await run([...path, '--help']);
          expect(result.code, path.join(' ')).toBe(0);
          expect(result.stdout, path.join(' ')).toContain(`Usage: robustmq ${path.join(' ')}`);
        }),
      );
    }
  });
});
