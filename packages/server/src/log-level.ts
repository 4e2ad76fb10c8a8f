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

/**
 * Each key once: a child's bindings are merged into its parent's and the child is made from the
 * root logger, since pino would write a key bound at two levels twice (`"protocol":"kafka"` from the
 * node and again from the plugin), which log stores such as Elasticsearch refuse. Nested components
 * join into one path (`storage/journal-client/rpc-client`); any other key takes the inner value.
 */
export function mergedBindings(
  outer: Readonly<Record<string, unknown>>,
  inner: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...outer, ...inner };
  const [a, b] = [outer.component, inner.component];
  if (typeof a === 'string' && typeof b === 'string' && a !== b) merged.component = `${a}/${b}`;
  return merged;
}

/** `root` (which should itself pass every level) behind `control`'s current level. */
export function gateLogger(
  root: Logger,
  control: LogLevelControl,
  bindings: Readonly<Record<string, unknown>> = {},
): Logger {
  const inner = Object.keys(bindings).length === 0 ? root : root.child(bindings);
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
    child: (more) => gateLogger(root, control, mergedBindings(bindings, more)),
  };
}
