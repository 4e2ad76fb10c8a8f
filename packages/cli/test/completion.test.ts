import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/cli.js';

describe('robustmq completion', () => {
  const dir = mkdtempSync(join(tmpdir(), 'robustmq-cli-completion-'));
  let bashScript = '';

  beforeAll(async () => {
    const result = await run(['completion', 'bash']);
    expect(result.code).toBe(0);
    bashScript = join(dir, 'robustmq.bash');
    writeFileSync(bashScript, result.stdout);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** What bash offers after the words typed so far (the last one is being completed). */
  function complete(...words: string[]): string[] {
    const script = [
      `source ${JSON.stringify(bashScript)}`,
      `COMP_WORDS=(robustmq ${words.map((w) => `'${w}'`).join(' ')})`,
      `COMP_CWORD=${words.length}`,
      '_robustmq',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const result = spawnSync('bash', ['--norc', '--noprofile', '-c', script], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    return result.stdout.split('\n').filter(Boolean).sort();
  }

  it('completes commands, subcommands, options and option values in bash', () => {
    expect(complete('')).toEqual(
      [
        'acl',
        'amqp',
        'cluster',
        'completion',
        'config',
        'help',
        'kafka',
        'mqtt',
        'status',
        'topic',
        'user',
      ].sort(),
    );
    expect(complete('to')).toEqual(['topic']);
    expect(complete('topic', '')).toEqual(['alter', 'create', 'delete', 'describe', 'list']);
    expect(complete('kafka', 'groups', 'r')).toEqual(['reset-offsets']);
    expect(complete('--server', 'http://x:1', 'mqtt', 's')).toEqual(['sessions', 'sub', 'subscriptions']);
    expect(complete('topic', 'create', '--st')).toEqual(['--storage-class']);
    expect(complete('topic', 'create', 't', '--storage-class', '')).toEqual([
      'file',
      'memory',
      'rocksdb',
      'tiered',
    ]);
    expect(complete('-o', '')).toEqual(['json', 'table']);
    expect(complete('mqtt', 'pub', '--qos', '')).toEqual(['0', '1', '2']);
    expect(complete('acl', 'create', '--')).toContain('--permission');
    expect(complete('acl', 'create', '--')).toContain('--server');
  });

  it('prints zsh and fish scripts built from the same command tree', async () => {
    const zsh = await run(['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout.startsWith('#compdef robustmq\n')).toBe(true);
    expect(zsh.stdout).toContain("'kafka groups') printf '%s\\n' 'list' 'describe' 'delete' 'reset-offsets'");
    expect(zsh.stdout).toContain("'reset-offsets:move a group");
    const fish = await run(['completion', 'fish']);
    expect(fish.code).toBe(0);
    expect(fish.stdout).toMatch(
      /^complete -c robustmq -n '__robustmq_at '\\''topic'\\''' -a 'create' -d 'create a topic'$/m,
    );
    expect(fish.stdout).toMatch(
      /^complete -c robustmq -n '__robustmq_at '\\''topic create'\\''' -l 'storage-class' -x -a 'memory file rocksdb tiered' /m,
    );
    expect((await run(['completion', 'tcsh'])).code).toBe(2);
  });
});
