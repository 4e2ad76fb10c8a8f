#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { CliError, DEFAULT_API_URL, ExitCode } from './api.js';
import { status } from './commands/status.js';
import type { OutputFormat } from './output.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const write = (text: string) => process.stdout.write(text);

// A reader that has seen enough (`robustmq status | head -1`) closes the pipe: end quietly, as Unix
// tools do, instead of failing on the next write.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? ExitCode.Ok);
  throw error;
});

interface GlobalOptions {
  server: string;
  output: OutputFormat;
}

const program = new Command('robustmq')
  .description('Administer and test a RobustMQ cluster through its admin HTTP API')
  .version(version, '-v, --version')
  .addOption(
    new Option('-s, --server <url>', 'admin API address').env('ROBUSTMQ_API_URL').default(DEFAULT_API_URL),
  )
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
  .exitOverride();

program
  .command('status')
  .description('show whether the node is ready, its version, roles and listeners (exit 1 if not ready)')
  .action(async () => {
    const options = program.opts<GlobalOptions>();
    process.exitCode = await status(options.server, options.output, write);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
  } else if (error instanceof CliError) {
    process.stderr.write(`robustmq: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(
      `robustmq: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = ExitCode.NotOk;
  }
});
