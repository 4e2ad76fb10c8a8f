#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { isRobustMQError } from '@robustmq/core';
import { loadConfig, type FlagSettings } from './config/load.js';
import { startNode, type RunningNode } from './node.js';
import { StartupError } from './startup-error.js';
import { VERSION } from './version.js';

const fail = (message: string): never => {
  process.stderr.write(`robustmq-server: ${message}\n`);
  process.exit(1);
};

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}
const port = integer(0, 65535);
const list = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
const collect = (value: string, previous: string[] = []) => [...previous, value];

interface StartFlags extends Omit<FlagSettings, 'set'> {
  config?: string;
  set?: string[];
}

async function start(flags: StartFlags): Promise<void> {
  let node: RunningNode;
  try {
    const { config: file, ...settings } = flags;
    const configFile = file ?? process.env.ROBUSTMQ_CONFIG;
    const loaded = await loadConfig({
      ...(configFile ? { file: configFile } : {}),
      env: process.env,
      flags: settings,
    });
    node = await startNode(loaded);
  } catch (error) {
    if (error instanceof StartupError || isRobustMQError(error)) return fail(error.message);
    throw error;
  }

  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      node.logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    node.logger.info({ signal }, 'shutting down');
    node.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        node.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

const program = new Command('robustmq-server')
  .description('RobustMQ: MQTT, Kafka and AMQP on one cluster')
  .version(VERSION, '-v, --version');

program
  .command('start', { isDefault: true })
  .description('start a node (standalone by default: every role in this process)')
  .option('-c, --config <file>', 'TOML config file (env ROBUSTMQ_CONFIG)')
  .option('--data-dir <dir>', 'data directory (default ./robustmq-data)')
  .option('--node-id <id>', 'this node id', integer(0, 2 ** 31 - 1))
  .option('--roles <roles>', 'comma-separated roles: meta,broker,journal', list)
  .option('--protocols <packages>', 'comma-separated protocol packages to load', list)
  .option('--bind <address>', 'address listeners bind (default 0.0.0.0)')
  .option('--http-port <port>', 'admin HTTP port (default 58080)', port)
  .option('--mqtt-port <port>', 'MQTT port (default 1883)', port)
  .option('--kafka-port <port>', 'Kafka port (default 9092)', port)
  .option('--amqp-port <port>', 'AMQP port (default 5672)', port)
  .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent')
  .option('--set <section.key=value>', 'any other setting; repeatable', collect)
  .addHelpText(
    'after',
    '\nSettings come from defaults, then the config file, then ROBUSTMQ_* environment variables\n' +
      '(ROBUSTMQ_DATA_DIR, ROBUSTMQ_HTTP_PORT, ROBUSTMQ_MQTT_PORT, ...), then flags.',
  )
  .action(start);

program
  .parseAsync(process.argv)
  .catch((error: unknown) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));
