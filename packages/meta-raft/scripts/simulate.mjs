#!/usr/bin/env node
// Runs the seeded Raft simulation over more seeds than CI does.
//   npm run simulate -- --seeds 500            seeds 1..500
//   npm run simulate -- --seeds 500 --start 1000
//   npm run simulate -- --seed 1234            replay one seed, with its summary
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const usage = 'usage: npm run simulate -- --seeds N [--start S] | --seed X [--verbose]';
const args = process.argv.slice(2);
const env = { ...process.env };
for (let i = 0; i < args.length; i++) {
  const value = args[i + 1];
  switch (args[i]) {
    case '--seeds':
      env.RAFT_SIM_SEEDS = value;
      i++;
      break;
    case '--start':
      env.RAFT_SIM_START = value;
      i++;
      break;
    case '--seed':
      env.RAFT_SIM_SEED = value;
      i++;
      break;
    case '--verbose':
      env.RAFT_SIM_VERBOSE = '1';
      break;
    default:
      process.stderr.write(`${usage}\n`);
      process.exit(2);
  }
}
for (const key of ['RAFT_SIM_SEEDS', 'RAFT_SIM_START', 'RAFT_SIM_SEED']) {
  if (env[key] !== undefined && !/^\d+$/.test(env[key])) {
    process.stderr.write(`${usage}\n`);
    process.exit(2);
  }
}

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const started = Date.now();
const run = spawnSync(process.execPath, [vitest, 'run', 'test/raft/simulation/simulation.test.ts'], {
  cwd: packageDir,
  env,
  stdio: 'inherit',
});
const seconds = ((Date.now() - started) / 1000).toFixed(1);
const what =
  env.RAFT_SIM_SEED !== undefined ? `seed ${env.RAFT_SIM_SEED}` : `${env.RAFT_SIM_SEEDS ?? 'the CI'} seeds`;
process.stdout.write(`raft simulation: ${what} ${run.status === 0 ? 'passed' : 'FAILED'} in ${seconds} s\n`);
process.exit(run.status ?? 1);
