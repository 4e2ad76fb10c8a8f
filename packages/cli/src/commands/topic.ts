import { Option, type Command } from 'commander';
import { bytes, collect, duration, integer, keyValue, limitValue, type Limit } from '../args.js';
import { ExitCode } from '../api.js';
import { action } from '../context.js';
import { listOptions, showList, type ListOptions } from '../list.js';
import { fields, formatBytes, formatDuration, json, removal, table } from '../output.js';

interface Topic {
  name: string;
  partitions: number;
  storageClass: string;
  retentionMs: number | null;
  retentionBytes: number | null;
  configs: Record<string, string>;
  createdAt: string | number;
  sizeBytes: number;
  messages: number;
}

interface TopicDetails extends Topic {
  partitionDetails: Array<{
    partition: number;
    logStartOffset: number;
    nextOffset: number;
    sizeBytes: number;
  }>;
}

const topicPath = (name: string) => `/topics/${encodeURIComponent(name)}`;

function topicRows(topics: Topic[]): string {
  return table(
    ['NAME', 'PARTITIONS', 'STORAGE', 'RETENTION', 'RETENTION SIZE', 'SIZE', 'MESSAGES'],
    topics.map((t) => [
      t.name,
      String(t.partitions),
      t.storageClass,
      formatDuration(t.retentionMs),
      formatBytes(t.retentionBytes ?? -1),
      formatBytes(t.sizeBytes),
      String(t.messages),
    ]),
  );
}

function topicDetails(topic: TopicDetails): string {
  const configs = Object.entries(topic.configs ?? {});
  return (
    fields([
      ['name', topic.name],
      ['partitions', String(topic.partitions)],
      ['storage class', topic.storageClass],
      ['retention', formatDuration(topic.retentionMs)],
      ['retention size', formatBytes(topic.retentionBytes ?? -1)],
      ['size', formatBytes(topic.sizeBytes)],
      ['messages', String(topic.messages)],
      ['created', new Date(topic.createdAt).toISOString()],
      ...configs.map(([k, v]) => [`config ${k}`, v] as const),
    ]) +
    '\n' +
    table(
      ['PARTITION', 'START OFFSET', 'NEXT OFFSET', 'MESSAGES', 'SIZE'],
      (topic.partitionDetails ?? []).map((p) => [
        String(p.partition),
        String(p.logStartOffset),
        String(p.nextOffset),
        String(p.nextOffset - p.logStartOffset),
        formatBytes(p.sizeBytes),
      ]),
    )
  );
}

interface TopicSettings {
  partitions?: number;
  storageClass?: string;
  retention?: Limit;
  retentionBytes?: Limit;
  config?: Record<string, string>;
  deleteConfig?: string[];
}

/** `robustmq topic list|create|describe|alter|delete`. */
export function registerTopic(program: Command): void {
  const topic = program
    .command('topic')
    .description('list, create, describe, alter and delete topics (shared by MQTT, Kafka and AMQP)');

  listOptions(
    topic.command('list').alias('ls').description('list topics with their size and retention'),
  ).action(
    action<ListOptions>(async (context, _args, options) => {
      await showList<Topic>(context, '/topics', options, topicRows);
    }),
  );

  topic
    .command('create')
    .description('create a topic')
    .argument('<name>', 'topic name')
    .option('-p, --partitions <n>', 'number of partitions', integer(1, 100_000), 1)
    .addOption(
      new Option(
        '--storage-class <class>',
        "where its messages live: the class of the node's storage engine (the default)",
      ).choices(['memory', 'file', 'rocksdb', 'tiered']),
    )
    .option('--retention <duration>', 'keep messages this long: 30m, 12h, 7d, or unlimited', duration)
    .option(
      '--retention-bytes <size>',
      'keep at most this much per partition: 512MiB, 10GB, or unlimited',
      bytes,
    )
    .option('-c, --config <key=value>', 'a topic setting (repeatable)', keyValue)
    .action(
      action<TopicSettings>(async (context, [name], options) => {
        const body: Record<string, unknown> = { name, partitions: options.partitions };
        if (options.storageClass) body.storageClass = options.storageClass;
        if (options.retention !== undefined) body.retentionMs = limitValue(options.retention);
        if (options.retentionBytes !== undefined) body.retentionBytes = limitValue(options.retentionBytes);
        if (options.config) body.configs = options.config;
        const created = await context.api.post<Topic>('/topics', body);
        context.out(context.output === 'json' ? json(created) : `created topic ${created.name}\n`);
      }),
    );

  topic
    .command('describe')
    .description('show a topic with its partitions and offsets')
    .argument('<name>', 'topic name')
    .action(
      action(async (context, [name]) => {
        const details = await context.api.get<TopicDetails>(topicPath(name!));
        context.out(context.output === 'json' ? json(details) : topicDetails(details));
      }),
    );

  topic
    .command('alter')
    .description('change a topic: add partitions, change retention, set or remove settings')
    .argument('<name>', 'topic name')
    .option('-p, --partitions <n>', 'new number of partitions (only grows)', integer(1, 100_000))
    .option('--retention <duration>', 'keep messages this long: 30m, 12h, 7d, or unlimited', duration)
    .option(
      '--retention-bytes <size>',
      'keep at most this much per partition: 512MiB, 10GB, or unlimited',
      bytes,
    )
    .option('-c, --config <key=value>', 'set a topic setting (repeatable)', keyValue)
    .option('--delete-config <key>', 'remove a topic setting (repeatable)', collect)
    .action(
      action<TopicSettings>(async (context, [name], options) => {
        const body: Record<string, unknown> = {};
        if (options.partitions !== undefined) body.partitions = options.partitions;
        if (options.retention !== undefined) body.retentionMs = limitValue(options.retention);
        if (options.retentionBytes !== undefined) body.retentionBytes = limitValue(options.retentionBytes);
        const configs: Record<string, string | null> = { ...options.config };
        for (const key of options.deleteConfig ?? []) configs[key] = null;
        if (Object.keys(configs).length) body.configs = configs;
        if (Object.keys(body).length === 0) {
          context.err(
            'robustmq: nothing to change: give --partitions, --retention, --retention-bytes, --config or --delete-config\n',
          );
          return ExitCode.Usage;
        }
        const altered = await context.api.patch<Topic>(topicPath(name!), body);
        context.out(context.output === 'json' ? json(altered) : `altered topic ${altered.name}\n`);
      }),
    );

  topic
    .command('delete')
    .alias('rm')
    .description('delete a topic and its messages')
    .argument('<name>', 'topic name')
    .option('--if-exists', 'succeed when the topic does not exist')
    .action(
      action<{ ifExists?: boolean }>(async (context, [name], options) => {
        const removed = await context.api.remove(topicPath(name!), options.ifExists);
        context.out(removal(context.output, removed, 'deleted', `topic ${name}`, name!));
      }),
    );
}
