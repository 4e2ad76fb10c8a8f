import type { LogFn, Logger } from '@robustmq/core';
import { LOG_LEVELS } from './config/schema.js';

export type LogLevel = (typeof LOG_LEVELS)[number];

type Method = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const METHODS: readonly Method[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/**
 * The node's log level, changeable while it runs. Loggers made by {@link gateLogger} (and every
 * child of them) check it on each call, so a change reaches loggers created long before it; pino's
 * own children keep the level they were born with, which is why the check lives here.
 */
export class LogLevelControl {
  private threshold: number;

  constructor(private current: LogLevel) {
    this.threshold = LOG_LEVELS.indexOf(current);
  }

  get level(): LogLevel {
    return this.current;
  }

  set level(level: LogLevel) {
    this.current = level;
    this.threshold = LOG_LEVELS.indexOf(level);
  }

  /** Whether a line at `method` is written now. */
  enabled(method: Method): boolean {
    return METHODS.indexOf(method) >= this.threshold;
  }
}

/** `inner` (which should itself pass every level) behind `control`'s current level. */
export function gateLogger(inner: Logger, control: LogLevelControl): Logger {
  const gate =
    (method: Method): LogFn =>
    (fields: object | string, message?: string) => {
      if (!control.enabled(method)) return;
      if (typeof fields === 'string') inner[method](fields);
      else inner[method](fields, message);
    };
  return {
    trace: gate('trace'),
    debug: gate('debug'),
    info: gate('info'),
    warn: gate('warn'),
    error: gate('error'),
    fatal: gate('fatal'),
    child: (bindings) => gateLogger(inner.child(bindings), control),
  };
}
