import { Option, type Command } from 'commander';
import type { Kafka, KafkaConfig, Message, SASLOptions } from 'kafkajs';
import { CliError, ExitCode } from '../api.js';
import { integer, keyValue } from '../args.js';
import { action, type Context } from '../context.js';
import { listenerAddress } from '../listener-address.js';
import { bodies, bodyText } from '../messages.js';
import { Progress } from '../progress.js';
import { untilStopped } from '../run.js';

interface ClientOptions {
  brokers?: string;
  sasl?: 'plain' | 'scram-sha-256' | 'scram-sha-512';
}

function clientOptions(command: Command): Command {
  return command
    .option(
      '-b, --brokers <host:port,...>',
      "Kafka bootstrap brokers (default: the node's Kafka listener, else <host of --server>:9092)",
    )
    .addOption(
      new Option('--sasl <mechanism>', 'authenticate as --user/--password by this SASL mechanism').choices([
        'plain',
        'scram-sha-256',
        'scram-sha-512',
      ]),
    );
}

async function kafkaClient(
  context: Context,
  options: ClientOptions,
): Promise<{ kafka: Kafka; brokers: string }> {
  // Loaded on use, so commands that do not need it start faster.
  const { Kafka, logLevel } = await import('kafkajs');
  const brokers = options.brokers ?? (await listenerAddress(context.server, 'kafka', 9092));
  const config: KafkaConfig = {
    clientId: 'robustmq-cli',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    retry: { retries: 3, initialRetryTime: 200 },
  };
  const { user, password } = context.credentials;
  if (options.sasl) {
    if (!user) throw new CliError('--sasl needs --user and --password', ExitCode.Usage);
    config.sasl = {
      mechanism: options.sasl,
      username: user,
      password: password ?? '',
    } as SASLOptions;
  }
  return { kafka: new Kafka(config), brokers };
}

/** Turns a kafkajs failure into the CLI's exit codes: unreachable 3, SASL refused 4, else 1. */
function failure(brokers: string, error: unknown): CliError {
  if (error instanceof CliError) return error;
  const chain: Array<{ name?: string; message?: string; code?: string }> = [];
  for (let e = error as { cause?: unknown; originalError?: unknown } | undefined; e && chain.length < 5;) {
    chain.push(e as (typeof chain)[number]);
    e = (e.originalError ?? e.cause) as typeof e;
  }
  const names = chain.map((e) => `${e.name ?? ''} ${e.message ?? ''} ${e.code ?? ''}`).join(' ');
  const message = (error as Error).message ?? String(error);
  if (/SASL|Authentication/i.test(names)) return new CliError(`${brokers}: ${message}`, ExitCode.AuthRefused);
  if (/Connection|ECONNREFUSED|EHOSTUNREACH|ENOTFOUND|ETIMEDOUT/i.test(names)) {
    return new CliError(`cannot reach ${brokers}: ${message}`, ExitCode.Unreachable);
  }
  return new CliError(`${brokers}: ${message}`, ExitCode.NotOk);
}

const ACKS = { all: -1, leader: 1, none: 0 } as const;
const BATCH = 500;

/** `robustmq kafka produce`: sends records from the command line or stdin. */
export function registerKafkaProduce(kafka: Command): void {
  clientOptions(
    kafka
      .command('produce')
      .description('send records: the given values, or one per line of stdin')
      .argument('[values...]', 'record values (default: read lines from stdin)')
      .requiredOption('-t, --topic <topic>', 'topic to send to'),
  )
    .option('-k, --key <key>', 'record key')
    .option('-H, --header <key=value>', 'record header (repeatable)', keyValue)
    .option('-p, --partition <n>', 'partition (default: by key, or spread)', integer(0))
    .addOption(
      new Option('--acks <acks>', 'acknowledgement to wait for').choices(Object.keys(ACKS)).default('all'),
    )
    .option(
      '-n, --count <n>',
      'send this many records (repeating the given ones), then print the rate',
      integer(0),
    )
    .option('--progress', 'show a progress line on stderr even when it is not a terminal')
    .action(
      action<
        ClientOptions & {
          topic: string;
          key?: string;
          header?: Record<string, string>;
          partition?: number;
          acks: keyof typeof ACKS;
          count?: number;
        }
      >(async (context, args, options) => {
        const given = (args[0] as unknown as string[] | undefined) ?? [];
        const { kafka: client, brokers } = await kafkaClient(context, options);
        const producer = client.producer({ allowAutoTopicCreation: true });
        const progress = new Progress('produced', options.count, context.progress, context.err);
        let connected = false;
        try {
          await producer.connect();
          connected = true;
          let batch: Message[] = [];
          const flush = async () => {
            if (!batch.length) return;
            await producer.send({ topic: options.topic, acks: ACKS[options.acks], messages: batch });
            progress.add(batch.length);
            batch = [];
          };
          for await (const value of bodies(given, options.count)) {
            const message: Message = { value };
            if (options.key !== undefined) message.key = options.key;
            if (options.header) message.headers = options.header;
            if (options.partition !== undefined) message.partition = options.partition;
            batch.push(message);
            if (batch.length >= BATCH) await flush();
          }
          await flush();
        } catch (error) {
          throw failure(brokers, error);
        } finally {
          progress.finish();
          if (connected) await producer.disconnect();
        }
      }),
    );
}

/** `robustmq kafka consume`: reads records as a member of a consumer group and prints them. */
export function registerKafkaConsume(kafka: Command): void {
  clientOptions(
    kafka
      .command('consume')
      .description('read records and print them (value per line; one JSON object per line with -o json)')
      .requiredOption('-t, --topic <topic>', 'topic to read'),
  )
    .option(
      '-g, --group <id>',
      'consumer group; its committed offsets are used and advanced (default: a new group)',
    )
    .option('--from-beginning', 'start at the earliest offset when the group has none committed')
    .option('-n, --count <n>', 'exit after this many records, then print the rate', integer(1))
    .option('-W, --timeout <seconds>', 'give up (exit 1) after this many seconds', integer(1))
    .option('-v, --verbose', 'print partition, offset and key before each value')
    .option('--progress', 'show a progress line on stderr even when it is not a terminal')
    .action(
      action<
        ClientOptions & {
          topic: string;
          group?: string;
          fromBeginning?: boolean;
          count?: number;
          timeout?: number;
          verbose?: boolean;
        }
      >(async (context, _args, options) => {
        const { kafka: client, brokers } = await kafkaClient(context, options);
        const groupId = options.group ?? `robustmq-cli-${process.pid}-${Date.now()}`;
        const consumer = client.consumer({ groupId, allowAutoTopicCreation: false });
        const progress = new Progress('consumed', options.count, context.progress, context.err);
        let connected = false;
        try {
          return await untilStopped(
            options,
            async (stop) => {
              consumer.on(consumer.events.CRASH, (event) => stop(failure(brokers, event.payload.error)));
              await consumer.connect();
              connected = true;
              await consumer.subscribe({
                topic: options.topic,
                fromBeginning: options.fromBeginning ?? false,
              });
              const full = () => options.count !== undefined && progress.count >= options.count;
              await consumer.run({
                autoCommit: false,
                eachBatchAutoResolve: false,
                eachBatch: async (payload) => {
                  const { batch } = payload;
                  let last: string | undefined;
                  for (const record of batch.messages) {
                    if (full() || !payload.isRunning() || payload.isStale()) break;
                    progress.add();
                    progress.clear();
                    printRecord(context, batch.topic, batch.partition, record, options.verbose ?? false);
                    payload.resolveOffset(record.offset);
                    last = record.offset;
                  }
                  if (last !== undefined) {
                    await consumer.commitOffsets([
                      {
                        topic: batch.topic,
                        partition: batch.partition,
                        offset: (BigInt(last) + 1n).toString(),
                      },
                    ]);
                  }
                  await payload.heartbeat();
                  if (full()) stop(ExitCode.Ok);
                },
              });
              if (context.progress) context.err(`consuming ${options.topic} as group ${groupId}\n`);
            },
            (seconds) => progress.timedOut(seconds),
          );
        } catch (error) {
          throw failure(brokers, error);
        } finally {
          progress.finish();
          if (connected) await consumer.disconnect();
        }
      }),
    );
}

function printRecord(
  context: Context,
  topic: string,
  partition: number,
  record: {
    offset: string;
    key: Buffer | null;
    value: Buffer | null;
    timestamp: string;
    headers?: Record<string, unknown>;
  },
  verbose: boolean,
): void {
  const value = record.value ? record.value.toString('utf8') : '';
  const key = record.key ? record.key.toString('utf8') : null;
  if (context.output === 'json') {
    const headers = Object.fromEntries(
      Object.entries(record.headers ?? {}).map(([k, v]) => [
        k,
        Array.isArray(v) ? v.map(bodyText) : bodyText(v),
      ]),
    );
    context.out(
      JSON.stringify({
        topic,
        partition,
        offset: Number(record.offset),
        timestamp: Number(record.timestamp),
        key,
        headers,
        value,
      }) + '\n',
    );
  } else {
    context.out(verbose ? `${partition}:${record.offset}\t${key ?? ''}\t${value}\n` : `${value}\n`);
  }
}
