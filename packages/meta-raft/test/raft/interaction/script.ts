// The interaction script format: a command line, a `----` line, then the expected output up to a
// blank line. Lines starting with `#` between cases are comments.
import type { CommandArgs } from './env.js';

export interface ScriptCase {
  kind: 'case';
  /** 1-based line of the command, for failure messages. */
  line: number;
  command: string;
  expected: string;
}

export type ScriptChunk = ScriptCase | { kind: 'text'; text: string };

export function parseScript(source: string): ScriptChunk[] {
  const lines = source.replace(/\n+$/, '').split('\n');
  const chunks: ScriptChunk[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      chunks.push({ kind: 'text', text: line });
      i++;
      continue;
    }
    if (lines[i + 1] !== '----') throw new Error(`line ${i + 2}: expected ---- after the command "${line}"`);
    let end = i + 2;
    while (end < lines.length && lines[end]!.trim() !== '') end++;
    chunks.push({ kind: 'case', line: i + 1, command: line, expected: lines.slice(i + 2, end).join('\n') });
    i = end;
  }
  return chunks;
}

/** Writes the script back with each case's output replaced by `outputs` (by case order). */
export function renderScript(chunks: readonly ScriptChunk[], outputs: readonly string[]): string {
  let next = 0;
  const lines = chunks.map((chunk) =>
    chunk.kind === 'text' ? chunk.text : `${chunk.command}\n----\n${outputs[next++]}`,
  );
  return `${lines.join('\n')}\n`;
}

/** Splits a command line into its name and arguments; `key=(a b)` and `(a b)` stay whole. */
export function parseCommand(line: string): { name: string; args: CommandArgs } {
  const tokens = line.match(/\S+=\([^)]*\)|\([^)]*\)|\S+/g) ?? [];
  const [name = '', ...rest] = tokens;
  const args: CommandArgs = { positional: [], named: new Map() };
  for (const token of rest) {
    const eq = token.indexOf('=');
    if (token.startsWith('(') || eq < 0) {
      args.positional.push(token.replace(/^\(|\)$/g, ''));
    } else {
      args.named.set(token.slice(0, eq), token.slice(eq + 1).replace(/^\(|\)$/g, ''));
    }
  }
  return { name, args };
}
