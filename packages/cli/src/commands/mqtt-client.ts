import { Option, type Command } from 'commander';
import type { IClientOptions, MqttClient } from 'mqtt';
import { CliError, ExitCode } from '../api.js';
import { collect, integer } from '../args.js';
import { action, type Context } from '../context.js';
import { listenerAddress } from '../listener-address.js';
import { bodies } from '../messages.js';
import { Progress } from '../progress.js';
import { untilStopped } from '../run.js';

interface ConnectOptions {
  broker?: string;
  clientId?: string;
  mqttVersion: '3.1.1' | '5';
  qos: '0' | '1' | '2';
  clean: boolean;
}

/** CONNACK codes meaning "who you are is not accepted": 3.1.1 4/5, MQTT 5 0x86/0x87/0x8C. */
const AUTH_CODES = new Set([4, 5, 0x86, 0x87, 0x8c]);

function connectOptions(command: Command): Command {
  return command
    .option(
      '-b, --broker <url>',
      "MQTT broker (default: the node's MQTT listener, else mqtt://<host of --server>:1883)",
    )
    .option('-i, --client-id <id>', 'client id (default: generated)')
    .addOption(
      new Option('-V, --mqtt-version <version>', 'protocol version').choices(['3.1.1', '5']).default('5'),
    )
    .addOption(new Option('-q, --qos <qos>', 'quality of service').choices(['0', '1', '2']).default('0'));
}

/** Connects, resolving once the broker accepted; maps refusals to the CLI's exit codes. */
async function open(context: Context, options: ConnectOptions): Promise<MqttClient> {
  const url = options.broker ?? `mqtt://${await listenerAddress(context.server, 'mqtt', 1883)}`;
  const clientOptions: IClientOptions = {
    protocolVersion: options.mqttVersion === '5' ? 5 : 4,
    clean: options.clean,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  };
  if (options.clientId) clientOptions.clientId = options.clientId;
  if (options.mqttVersion === '5' && !options.clean)
    clientOptions.properties = { sessionExpiryInterval: 0xffffffff };
  if (context.credentials.user) clientOptions.username = context.credentials.user;
  if (context.credentials.password !== undefined) clientOptions.password = context.credentials.password;
  // Loaded on use, so commands that do not need it start faster.
  const { connect } = await import('mqtt');
  const client = connect(url, clientOptions);
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (error: Error & { code?: string | number }) => {
      client.end(true);
      if (typeof error.code === 'number') {
        reject(
          new CliError(
            `${url} refused the connection: ${error.message}`,
            AUTH_CODES.has(error.code) ? ExitCode.AuthRefused : ExitCode.NotOk,
          ),
        );
      } else {
        reject(new CliError(`cannot reach ${url}: ${error.code ?? error.message}`, ExitCode.Unreachable));
      }
    });
    client.once('close', () =>
      reject(new CliError(`cannot reach ${url}: connection closed`, ExitCode.Unreachable)),
    );
  });
}

/** A PUBACK/PUBREC with a failure reason (MQTT 5): not authorized is exit 4, the rest exit 1. */
function publishFailure(error: Error & { code?: number }): never {
  throw new CliError(
    `publish refused: ${error.message}`,
    error.code !== undefined && AUTH_CODES.has(error.code) ? ExitCode.AuthRefused : ExitCode.NotOk,
  );
}

/**
 * MQTT.js rejects a subscribe whose SUBACK refuses a filter, with the SUBACK's codes: not
 * authorized (0x87, or MQTT 3's 0x80 failure) is exit 4, the rest exit 1.
 */
function subscribeFailure(error: Error & { packet?: { granted?: readonly number[] } }): never {
  const codes = error.packet?.granted ?? [];
  throw new CliError(
    `subscription refused: ${error.message}`,
    codes.some((code) => code === 0x80 || code === 0x87) ? ExitCode.AuthRefused : ExitCode.NotOk,
  );
}

/** `robustmq mqtt pub`: publishes messages from the command line or stdin. */
export function registerMqttPub(mqtt: Command): void {
  connectOptions(
    mqtt
      .command('pub')
      .description('publish messages: the given ones, or one per line of stdin')
      .argument('[messages...]', 'message bodies (default: read lines from stdin)')
      .requiredOption('-t, --topic <topic>', 'topic to publish to'),
  )
    .option('-r, --retain', 'retain the last message on the topic')
    .option(
      '-n, --count <n>',
      'send this many messages (repeating the given ones), then print the rate',
      integer(0),
    )
    .option('--progress', 'show a progress line on stderr even when it is not a terminal')
    .action(
      action<ConnectOptions & { topic: string; retain?: boolean; count?: number }>(
        async (context, args, options) => {
          const given = (args[0] as unknown as string[] | undefined) ?? [];
          const client = await open(context, { ...options, clean: true });
          const progress = new Progress('published', options.count, context.progress, context.err);
          const inFlight = new Set<Promise<unknown>>();
          // A connection lost mid-run fails the run instead of leaving publishes waiting.
          const closed = new Promise<never>((_resolve, reject) =>
            client.once('close', () =>
              reject(new CliError('the broker closed the connection', ExitCode.NotOk)),
            ),
          );
          closed.catch(() => undefined);
          try {
            for await (const body of bodies(given, options.count)) {
              const sent = client
                .publishAsync(options.topic, body, {
                  qos: Number(options.qos) as 0 | 1 | 2,
                  retain: options.retain ?? false,
                })
                .then(() => progress.add(), publishFailure);
              inFlight.add(sent);
              void sent.finally(() => inFlight.delete(sent)).catch(() => undefined);
              if (inFlight.size >= 256) await Promise.race([...inFlight, closed]);
            }
            await Promise.race([Promise.all(inFlight), closed]);
          } finally {
            progress.finish();
            client.removeAllListeners('close');
            await client.endAsync();
          }
        },
      ),
    );
}

/** `robustmq mqtt sub`: subscribes and prints each message received. */
export function registerMqttSub(mqtt: Command): void {
  connectOptions(
    mqtt
      .command('sub')
      .description('subscribe and print messages (body per line; one JSON object per line with -o json)')
      .requiredOption('-t, --topic <filter>', 'topic filter to subscribe to (repeatable)', collect),
  )
    .option('--no-clean', 'keep the session when disconnected (give --client-id)')
    .option('-n, --count <n>', 'exit after this many messages, then print the rate', integer(1))
    .option('-W, --timeout <seconds>', 'give up (exit 1) after this many seconds', integer(1))
    .option('-v, --verbose', 'print the topic before each body')
    .option('--progress', 'show a progress line on stderr even when it is not a terminal')
    .action(
      action<ConnectOptions & { topic: string[]; count?: number; timeout?: number; verbose?: boolean }>(
        async (context, _args, options) => {
          const client = await open(context, options);
          const progress = new Progress('received', options.count, context.progress, context.err);
          try {
            return await untilStopped(
              options,
              async (stop) => {
                client.on('message', (topic, payload, packet) => {
                  if (options.count !== undefined && progress.count >= options.count) return;
                  progress.add();
                  progress.clear();
                  if (context.output === 'json') {
                    const line: Record<string, unknown> = {
                      topic,
                      payload: payload.toString('utf8'),
                      qos: packet.qos,
                      retain: packet.retain,
                    };
                    if (packet.properties && Object.keys(packet.properties).length)
                      line.properties = packet.properties;
                    context.out(JSON.stringify(line) + '\n');
                  } else {
                    context.out(
                      options.verbose
                        ? `${topic} ${payload.toString('utf8')}\n`
                        : `${payload.toString('utf8')}\n`,
                    );
                  }
                  if (options.count !== undefined && progress.count >= options.count) stop(ExitCode.Ok);
                });
                client.on('close', () =>
                  stop(new CliError('the broker closed the connection', ExitCode.NotOk)),
                );
                const granted = await client
                  .subscribeAsync(options.topic, { qos: Number(options.qos) as 0 | 1 | 2 })
                  .catch(subscribeFailure);
                const refused = granted.filter((g) => (g.qos as number) >= 0x80);
                if (refused.length) {
                  throw new CliError(
                    `subscription refused: ${refused.map((g) => `${g.topic} (${g.qos})`).join(', ')}`,
                    refused.some((g) => [0x80, 0x87].includes(g.qos)) ? ExitCode.AuthRefused : ExitCode.NotOk,
                  );
                }
                if (context.progress) context.err(`subscribed to ${options.topic.join(', ')}\n`);
              },
              (seconds) => progress.timedOut(seconds),
            );
          } finally {
            progress.finish();
            client.removeAllListeners('close');
            await client.endAsync();
          }
        },
      ),
    );
}
