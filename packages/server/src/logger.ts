import type { Logger } from '@robustmq/core';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import type { NodeConfig } from './config/schema.js';
import { gateLogger, type LogLevelControl } from './log-level.js';

/**
 * The node's logger: JSON lines on stdout, or pino-pretty when asked or when stdout is a terminal.
 * pino itself passes every level; `level` decides, so the level can change at runtime (admin API).
 */
export function createLogger(
  log: NodeConfig['log'],
  bindings: Record<string, unknown>,
  level: LogLevelControl,
): Logger {
  const isPretty = log.format === 'pretty' || (log.format === 'auto' && process.stdout.isTTY === true);
  const options = { level: 'trace', base: bindings };
  // Synchronous writes: log volume is low, and the last lines before an exit must not be lost.
  const logger: Logger = isPretty
    ? pino(options, pretty({ colorize: process.stdout.isTTY === true, sync: true }))
    : pino(options, pino.destination({ dest: 1, sync: true }));
  return gateLogger(logger, level);
}
