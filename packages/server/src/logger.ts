import type { Logger } from '@robustmq/core';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import type { NodeConfig } from './config/schema.js';

/**
 * The node's logger: JSON lines on stdout, or pino-pretty when asked or when stdout is a terminal.
 * Pretty printing runs in the same thread (no worker) so the last lines before exit are not lost.
 */
export function createLogger(log: NodeConfig['log'], bindings: Record<string, unknown>): Logger {
  const isPretty = log.format === 'pretty' || (log.format === 'auto' && process.stdout.isTTY === true);
  const options = { level: log.level, base: bindings };
  const logger: Logger = isPretty
    ? pino(options, pretty({ colorize: process.stdout.isTTY === true, sync: true }))
    : pino(options);
  return logger;
}
