import type { Logger } from '@robustmq/core';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import type { NodeConfig } from './config/schema.js';

/**
 * The node's logger: JSON lines on stdout, or pino-pretty when asked or when stdout is a terminal.
 * Both write synchronously in this thread, so the last lines before an exit are never lost.
 */
export function createLogger(log: NodeConfig['log'], bindings: Record<string, unknown>): Logger {
  const isPretty = log.format === 'pretty' || (log.format === 'auto' && process.stdout.isTTY === true);
  const options = { level: log.level, base: bindings };
  // Synchronous writes: log volume is low, and the last lines before an exit must not be lost.
  const logger: Logger = isPretty
    ? pino(options, pretty({ colorize: process.stdout.isTTY === true, sync: true }))
    : pino(options, pino.destination({ dest: 1, sync: true }));
  return logger;
}
