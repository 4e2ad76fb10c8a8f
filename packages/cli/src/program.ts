import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { DEFAULT_API_URL } from './api.js';
import { registerAcl } from './commands/acl.js';
import { registerAmqp } from './commands/amqp.js';
import { registerCluster } from './commands/cluster.js';
import { registerCompletion } from './commands/completion.js';
import { registerConfig } from './commands/config.js';
import { registerKafka } from './commands/kafka.js';
import { registerMqtt } from './commands/mqtt.js';
import { registerStatus } from './commands/status.js';
import { registerTopic } from './commands/topic.js';
import { registerUser } from './commands/user.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const EXIT_CODES = `
Exit codes:
  0  done
  1  not done: not ready, not found, refused as invalid, or a receive that timed out
  2  bad command line
  3  the server or broker cannot be reached
  4  credentials missing or refused, or not allowed

Environment: ROBUSTMQ_API_URL, ROBUSTMQ_USER, ROBUSTMQ_PASSWORD, ROBUSTMQ_TOKEN.`;

/** The whole `robustmq` command tree. */
export function buildProgram(): Command {
  const program = new Command('robustmq')
    .description('Administer and test a RobustMQ cluster through its admin HTTP API')
    .version(version, '--version')
    .addOption(
      new Option('-s, --server <url>', 'admin API address').env('ROBUSTMQ_API_URL').default(DEFAULT_API_URL),
    )
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .addOption(new Option('--user <name>', 'log in as this user').env('ROBUSTMQ_USER'))
    .addOption(new Option('--password <password>', 'password for --user').env('ROBUSTMQ_PASSWORD'))
    .addOption(new Option('--token <token>', 'an admin API token instead of --user').env('ROBUSTMQ_TOKEN'))
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .addHelpText('after', EXIT_CODES);

  registerStatus(program);
  registerCluster(program);
  registerTopic(program);
  registerMqtt(program);
  registerKafka(program);
  registerAmqp(program);
  registerUser(program);
  registerAcl(program);
  registerConfig(program);
  registerCompletion(program);
  return program;
}
