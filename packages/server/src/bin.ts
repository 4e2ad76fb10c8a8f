#!/usr/bin/env node
import { mkdirSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { isRobustMQError } from '@robustmq/core';
import { createClusterCa, createNodeCertificate } from './cluster/certificates.js';
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
  // As Mosquitto does: SIGHUP reads the certificates again, for connections made from then on.
  process.on('SIGHUP', () => {
    try {
      node.logger.info({ renewed: node.renewCertificates() }, 'certificates read again');
    } catch (error) {
      node.logger.error(
        { err: error instanceof Error ? error.message : String(error) },
        'certificates not read again; the ones in use stay',
      );
    }
  });
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

const certs = program
  .command('certs')
  .description("make the certificates of the internal port's TLS (rpc.tls_cert, tls_key, tls_ca)");

certs
  .command('ca')
  .description("make the cluster's CA: ca.pem goes to every node (rpc.tls_ca); keep ca-key.pem off them")
  .requiredOption('--dir <dir>', 'directory to write ca.pem and ca-key.pem to (created if missing)')
  .action(async ({ dir }: { dir: string }) => {
    await writeCertificates(() => {
      mkdirSync(dir, { recursive: true });
      return createClusterCa(dir);
    });
  });

certs
  .command('node')
  .description("make a node's certificate and key, signed by the CA in --dir")
  .requiredOption('--dir <dir>', 'directory holding the CA; <name>.pem and <name>-key.pem are written there')
  .requiredOption('--name <name>', 'file name, e.g. node-1')
  .option('--host <host>', 'an IP address or host name other nodes reach this node by; repeatable', collect)
  .action(async ({ dir, name, host }: { dir: string; name: string; host?: string[] }) => {
    await writeCertificates(() => createNodeCertificate(dir, name, host ?? []));
  });

async function writeCertificates(make: () => Promise<string[]>): Promise<void> {
  try {
    for (const file of await make()) process.stdout.write(`wrote ${file}\n`);
  } catch (error) {
    if (error instanceof StartupError) return fail(error.message);
    throw error;
  }
}

program
  .parseAsync(process.argv)
  .catch((error: unknown) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));
