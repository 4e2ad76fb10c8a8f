#!/usr/bin/env node
import { CommanderError } from 'commander';
import { CliError, ExitCode } from './api.js';
import { buildProgram } from './program.js';

// A reader that has seen enough (`robustmq status | head -1`) closes the pipe: end quietly, as Unix
// tools do, instead of failing on the next write.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? ExitCode.Ok);
  throw error;
});

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
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
  })
  // Clients (MQTT, Kafka, AMQP) may leave timers behind; the command is done, so is the process.
  .finally(() => setTimeout(() => process.exit(), 100).unref());
