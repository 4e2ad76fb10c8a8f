import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '@robustmq/core';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';
import { nodeConfigSchema, SERVER_KEYS, type NodeConfig } from './schema.js';

type Table = Record<string, unknown>;

/** Settings given as command-line flags; `set` holds `section.key=value` pairs. */
export interface FlagSettings {
  dataDir?: string;
  httpPort?: number;
  mqttPort?: number;
  kafkaPort?: number;
  amqpPort?: number;
  nodeId?: number;
  roles?: string[];
  protocols?: string[];
  logLevel?: string;
  bind?: string;
  set?: string[];
}

export interface ConfigSources {
  /** Path of a TOML file (`--config`). */
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: FlagSettings;
}

export interface LoadedConfig {
  config: NodeConfig;
  /** Directory relative paths in the config are resolved against (the file's, else the cwd). */
  baseDir: string;
}

/**
 * Environment variables with the prefix that are not node settings: the `robustmq` CLI's, which
 * users may export in the shell they start the server from.
 */
const FOREIGN_ENV = new Set([
  'ROBUSTMQ_CONFIG',
  'ROBUSTMQ_API_URL',
  'ROBUSTMQ_USER',
  'ROBUSTMQ_PASSWORD',
  'ROBUSTMQ_TOKEN',
]);
const LIST_SETTINGS = new Set(['roles', 'protocols']);
const TOP_LEVEL_SCALARS = ['node_id', 'data_dir', 'bind', 'roles', 'protocols', 'shutdown_timeout_ms'];

/**
 * Builds the node config from, in rising precedence: defaults, the TOML file, `ROBUSTMQ_*`
 * environment variables, then flags. Throws a ConfigError naming the first bad setting.
 */
export async function loadConfig(sources: ConfigSources): Promise<LoadedConfig> {
  const raw: Table = sources.file ? await readTomlFile(sources.file) : {};
  for (const [path, value] of envSettings(sources.env ?? {})) setPath(raw, path, value);
  for (const [path, value] of flagSettings(sources.flags ?? {})) setPath(raw, path, value);
  const parsed = nodeConfigSchema.safeParse(raw);
  if (!parsed.success) throw toConfigError(parsed.error);
  return { config: parsed.data, baseDir: sources.file ? dirname(resolve(sources.file)) : process.cwd() };
}

async function readTomlFile(file: string): Promise<Table> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      'config',
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  try {
    return parseToml(text);
  } catch (error) {
    throw new ConfigError('config', `${file} is not valid TOML: ${(error as Error).message.split('\n')[0]}`);
  }
}

/**
 * `ROBUSTMQ_DATA_DIR` sets `data_dir`; otherwise the first word names the section and the rest
 * the key: `ROBUSTMQ_HTTP_PORT` sets `http.port`, `ROBUSTMQ_MQTT_TLS_PORT` sets `mqtt.tls_port`.
 */
function envSettings(env: NodeJS.ProcessEnv): Array<[string[], unknown]> {
  const settings: Array<[string[], unknown]> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('ROBUSTMQ_') || FOREIGN_ENV.has(name) || value === undefined) continue;
    const key = name.slice('ROBUSTMQ_'.length).toLowerCase();
    const top = TOP_LEVEL_SCALARS.find((setting) => setting === key);
    const path = top ? [top] : splitSection(key, name);
    settings.push([path, parseEnvValue(path, value)]);
  }
  return settings;
}

function splitSection(key: string, name: string): string[] {
  const cut = key.indexOf('_');
  if (cut <= 0 || cut === key.length - 1) {
    throw new ConfigError(name, 'unknown environment setting (expected ROBUSTMQ_<SECTION>_<KEY>)');
  }
  return [key.slice(0, cut), key.slice(cut + 1)];
}

function parseEnvValue(path: string[], value: string): unknown {
  if (path.length === 1 && LIST_SETTINGS.has(path[0]!)) return splitList(value);
  if (/^-?\d+$/.test(value)) return Number(value);
  if (value === 'true' || value === 'false') return value === 'true';
  return value;
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function flagSettings(flags: FlagSettings): Array<[string[], unknown]> {
  const settings: Array<[string[], unknown]> = [];
  const add = (path: string[], value: unknown) => {
    if (value !== undefined) settings.push([path, value]);
  };
  add(['data_dir'], flags.dataDir);
  add(['node_id'], flags.nodeId);
  add(['roles'], flags.roles);
  add(['protocols'], flags.protocols);
  add(['bind'], flags.bind);
  add(['http', 'port'], flags.httpPort);
  add(['log', 'level'], flags.logLevel);
  add(['mqtt', 'port'], flags.mqttPort);
  add(['kafka', 'port'], flags.kafkaPort);
  add(['amqp', 'port'], flags.amqpPort);
  for (const assignment of flags.set ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0)
      throw new ConfigError('--set', `expected section.key=value, got ${JSON.stringify(assignment)}`);
    const path = assignment.slice(0, eq).split('.');
    add(path, parseTomlValue(assignment.slice(eq + 1), assignment));
  }
  return settings;
}

/** `--set` values are TOML values (`8883`, `true`, `"text"`, `["a","b"]`); a bare word is a string. */
function parseTomlValue(text: string, assignment: string): unknown {
  try {
    return (parseToml(`v = ${text}`) as Table).v;
  } catch {
    if (/^[^"'[\]{}=\s]+$/.test(text)) return text;
    throw new ConfigError('--set', `cannot parse the value of ${assignment}`);
  }
}

function setPath(target: Table, path: string[], value: unknown): void {
  let table = target;
  for (const key of path.slice(0, -1)) {
    const next = table[key];
    if (next === undefined) table[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      throw new ConfigError(path.join('.'), `${key} is not a table`);
    }
    table = table[key] as Table;
  }
  table[path[path.length - 1]!] = value;
}

function toConfigError(error: z.ZodError): ConfigError {
  const issue = error.issues[0]!;
  const path = issue.path.map(String);
  if (path.length === 1 && !SERVER_KEYS.has(path[0]!)) {
    return new ConfigError(path[0]!, 'unknown setting (a protocol section must be a table, e.g. [mqtt])');
  }
  if (issue.code === 'unrecognized_keys') {
    return new ConfigError([...path, issue.keys[0]!].join('.'), 'unknown setting');
  }
  return new ConfigError(path.join('.') || 'config', issue.message);
}
