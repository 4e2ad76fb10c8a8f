import { createRequire } from 'node:module';
import { Option, type Command } from 'commander';
import type * as Rhea from 'rhea';
import type { Connection, ConnectionOptions, EventContext } from 'rhea';
import { CliError, ExitCode } from '../api.js';
import { integer } from '../args.js';
import { action, type Context } from '../context.js';
import { listenerAddress } from '../listener-address.js';
import { bodies, bodyText } from '../messages.js';
import { Progress } from '../progress.js';
import { untilStopped } from '../run.js';

interface ConnectOptions {
  url?: string;
  address: string;
  settleMode: 'settled' | 'unsettled';
}

function connectOptions(command: Command): Command {
  return command
    .option(
      '-u, --url <url>',
      "AMQP broker (default: the node's AMQP listener, else amqp://<host of --server>:5672)",
    )
    .requiredOption('-a, --address <address>', 'queue or topic address')
    .addOption(
      new Option(
        '--settle-mode <mode>',
        'settled: fire and forget (at most once); unsettled: each message is accepted (at least once)',
      )
        .choices(['settled', 'unsettled'])
        .default('unsettled'),
    );
}

/** The failure an AMQP error condition stands for. */
function failure(url: string, context: EventContext): CliError {
  // A refused link carries its error on the link (the connection stays open).
  const link = (context.sender ?? context.receiver ?? context.session) as { error?: unknown } | undefined;
  const error = (context.error ?? link?.error ?? context.connection.error) as
    (Error & { code?: string; condition?: string; description?: string }) | undefined;
  const condition = error?.condition ?? '';
  const text = error?.description ?? error?.message ?? condition;
  if (condition === 'amqp:unauthorized-access') return new CliError(`${url}: ${text}`, ExitCode.AuthRefused);
  if (error?.code) return new CliError(`cannot reach ${url}: ${error.code}`, ExitCode.Unreachable);
  if (!error) return new CliError(`${url} closed the connection`, ExitCode.NotOk);
  return new CliError(`${url}: ${condition}${text && text !== condition ? ` ${text}` : ''}`, ExitCode.NotOk);
}

/** Opens a connection; `failed` rejects on the first error of the connection or its links. */
async function open(
  context: Context,
  options: ConnectOptions,
): Promise<{ connection: Connection; url: string; failed: Promise<never> }> {
  const url = options.url ?? `amqp://${await listenerAddress(context.server, 'amqp', 5672)}`;
  const parsed = new URL(url);
  // Loaded on use, so commands that do not need it start faster.
  const rhea = createRequire(import.meta.url)('rhea') as typeof Rhea;
  const container = rhea.create_container({ id: `robustmq-cli-${process.pid}` });
  const tls = parsed.protocol === 'amqps:';
  const connectionOptions = {
    host: parsed.hostname,
    port: Number(parsed.port || (tls ? 5671 : 5672)),
    reconnect: false,
    idle_time_out: 30_000,
  } as ConnectionOptions;
  if (tls) Object.assign(connectionOptions, { transport: 'tls' });
  if (context.credentials.user) {
    connectionOptions.username = context.credentials.user;
    connectionOptions.password = context.credentials.password ?? '';
  }
  const connection = container.connect(connectionOptions);
  const failed = new Promise<never>((_resolve, reject) => {
    const fail = (event: EventContext) => reject(failure(url, event));
    connection.on('connection_error', fail);
    connection.on('sender_error', fail);
    connection.on('receiver_error', fail);
    connection.on('session_error', fail);
    connection.on('disconnected', fail);
    connection.on('error', fail);
  });
  failed.catch(() => undefined);
  await Promise.race([new Promise((resolve) => connection.once('connection_open', resolve)), failed]);
  return { connection, url, failed };
}

async function close(connection: Connection): Promise<void> {
  if (!connection.is_open()) return;
  const closed = new Promise((resolve) => {
    connection.once('connection_close', resolve);
    connection.once('disconnected', resolve);
  });
  connection.close();
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
}

/** `robustmq amqp send`: sends messages from the command line or stdin. */
export function registerAmqpSend(amqp: Command): void {
  connectOptions(
    amqp
      .command('send')
      .description('send messages: the given ones, or one per line of stdin')
      .argument('[messages...]', 'message bodies (default: read lines from stdin)'),
  )
    .option(
      '-n, --count <n>',
      'send this many messages (repeating the given ones), then print the rate',
      integer(0),
    )
    .option('--progress', 'show a progress line on stderr even when it is not a terminal')
    .action(
      action<ConnectOptions & { count?: number }>(async (context, args, options) => {
        const given = (args[0] as unknown as string[] | undefined) ?? [];
        const { connection, failed } = await open(context, options);
        const progress = new Progress('sent', options.count, context.progress, context.err);
        const settled = options.settleMode === 'settled';
        try {
          const sender = connection.open_sender({
            target: { address: options.address },
            snd_settle_mode: settled ? 1 : 0,
          });
          let pending = 0;
          let refused = 0;
          let wake: () => void = () => {};
          const changed = () => wake();
          sender.on('sendable', changed);
          const outcome = (accepted: boolean) => () => {
            pending--;
            if (accepted) progress.add();
            else refused++;
            changed();
          };
          sender.on('accepted', outcome(true));
          sender.on('rejected', outcome(false));
          sender.on('released', outcome(false));
          sender.on('modified', outcome(false));
          const next = () => Promise.race([new Promise<void>((resolve) => (wake = resolve)), failed]);
          for await (const body of bodies(given, options.count)) {
            while (!sender.sendable()) await next();
            sender.send({ body });
            if (settled) progress.add();
            else pending++;
          }
          while (pending > 0) await next();
          if (refused) {
            context.err(`robustmq: the broker did not accept ${refused} message(s)\n`);
            return ExitCode.NotOk;
          }
        } finally {
          progress.finish();
          await close(connection);
        }
      }),
    );
}

/** `robustmq amqp receive`: receives messages and prints them. */
export function registerAmqpReceive(amqp: Command): void {
  connectOptions(
    amqp
      .command('receive')
      .description('receive messages and print them (body per line; one JSON object per line with -o json)'),
  )
    .option('-n, --count <n>', 'exit after this many messages, then print the rate', integer(1))
    .option('-W, --timeout <seconds>', 'give up (exit 1) after this many seconds', integer(1))
    .option('--progress', 'show a progress line on stderr even when it is not a terminal')
    .action(
      action<ConnectOptions & { count?: number; timeout?: number }>(async (context, _args, options) => {
        const { connection, failed } = await open(context, options);
        const progress = new Progress('received', options.count, context.progress, context.err);
        const settled = options.settleMode === 'settled';
        const window = 100;
        try {
          return await untilStopped(
            options,
            async (stop) => {
              failed.catch((error: CliError) => stop(error));
              // Credit is granted by hand, so no more than --count messages are ever taken.
              const receiver = connection.open_receiver({
                source: { address: options.address },
                credit_window: 0,
                autoaccept: false,
                snd_settle_mode: settled ? 1 : 0,
              });
              let credit = 0;
              const grant = () => {
                const wanted =
                  options.count === undefined ? window : Math.min(window, options.count - progress.count);
                if (wanted - credit > window / 2 || (credit === 0 && wanted > 0)) {
                  receiver.add_credit(wanted - credit);
                  credit = wanted;
                }
              };
              receiver.on('message', (event: EventContext) => {
                credit--;
                if (options.count !== undefined && progress.count >= options.count) return;
                const message = event.message!;
                if (!settled) event.delivery?.accept();
                progress.add();
                progress.clear();
                if (context.output === 'json') {
                  const line: Record<string, unknown> = {
                    address: options.address,
                    body: bodyText(message.body),
                  };
                  for (const key of [
                    'message_id',
                    'subject',
                    'content_type',
                    'correlation_id',
                    'to',
                    'reply_to',
                  ] as const) {
                    if (message[key] !== undefined) line[key] = message[key];
                  }
                  if (message.application_properties)
                    line.application_properties = message.application_properties;
                  context.out(JSON.stringify(line) + '\n');
                } else {
                  context.out(`${bodyText(message.body)}\n`);
                }
                if (options.count !== undefined && progress.count >= options.count) stop(ExitCode.Ok);
                else grant();
              });
              await Promise.race([new Promise((resolve) => receiver.once('receiver_open', resolve)), failed]);
              grant();
              if (context.progress) context.err(`receiving from ${options.address}\n`);
            },
            (seconds) => progress.timedOut(seconds),
          );
        } finally {
          progress.finish();
          await close(connection);
        }
      }),
    );
}
