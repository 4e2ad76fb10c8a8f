// Runs every script in scripts/: each command's output must equal the checked-in expectation.
// RAFT_REWRITE=1 rewrites the expectations from the actual output (review the diff before keeping it).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InteractionEnv } from './interaction/env.js';
import { parseCommand, parseScript, renderScript } from './interaction/script.js';

const dir = join(import.meta.dirname, 'scripts');
const rewrite = process.env.RAFT_REWRITE === '1';
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.txt'))
  .sort();

describe('raft interaction scripts', () => {
  it('has scripts to run', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(file, () => {
      const path = join(dir, file);
      const chunks = parseScript(readFileSync(path, 'utf8'));
      const env = new InteractionEnv();
      const outputs: string[] = [];
      for (const chunk of chunks) {
        if (chunk.kind !== 'case') continue;
        const { name, args } = parseCommand(chunk.command);
        const output = env.run(name, args);
        outputs.push(output);
        if (!rewrite) expect(output, `${file}:${chunk.line}: ${chunk.command}`).toBe(chunk.expected);
      }
      if (rewrite) writeFileSync(path, renderScript(chunks, outputs));
    });
  }
});
