/**
 * The benchmark dispatcher: `bench [suite] [options]`. With no suite it runs every suite there is,
 * in order, each with the same options.
 */
import { UsageError, type Suite } from './suite.js';

/** Suites load lazily, so one suite's engines and peers are not loaded to run another. */
const SUITES: Record<string, () => Promise<Suite>> = {
  storage: async () => (await import('./storage.js')).storageSuite,
  mqtt: async () => (await import('./mqtt.js')).mqttSuite,
  amqp: async () => (await import('./amqp.js')).amqpSuite,
  meta: async () => (await import('./meta.js')).metaSuite,
  kafka: async () => (await import('./kafka.js')).kafkaSuite,
};

async function usage(): Promise<string> {
  const suites = await Promise.all(Object.values(SUITES).map((load) => load()));
  const lines = [
    'usage: npm run bench -- [suite] [options]',
    '  with no suite, runs them all',
    '',
    'suites:',
    ...suites.flatMap((s) => [`  ${s.name.padEnd(10)} ${s.summary}`, s.options, '']),
  ];
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const first = argv[0];
  if (first === 'help' || first === '--help' || first === '-h') {
    process.stdout.write(`${await usage()}\n`);
    return 0;
  }
  let names = Object.keys(SUITES);
  let args = argv;
  if (first !== undefined && !first.startsWith('-')) {
    if (!(first in SUITES)) {
      process.stderr.write(`unknown suite ${JSON.stringify(first)}\n\n${await usage()}\n`);
      return 2;
    }
    names = [first];
    args = argv.slice(1);
  }
  for (const name of names) {
    const load = SUITES[name];
    if (load === undefined) continue;
    try {
      await (await load()).run(args);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      process.stderr.write(`${error.message}\n\n${await usage()}\n`);
      return 2;
    }
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
