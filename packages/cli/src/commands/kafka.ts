import { InvalidArgumentError, Option, type Command } from 'commander';
import { ExitCode } from '../api.js';
import { action } from '../context.js';
import { json, objectDetails } from '../output.js';
import { registerKafkaConsume, registerKafkaProduce } from './kafka-client.js';
import { registerResource, resourcePath, type Item } from './resource.js';

const GROUPS = { protocol: 'kafka', resource: 'groups' } as const;

/** The sum of every `lag` in a group's per-partition lists, as a line under its details. */
function totalLag(item: Item): string {
  let total = 0;
  let seen = false;
  for (const value of Object.values(item)) {
    if (!Array.isArray(value)) continue;
    for (const entry of value as unknown[]) {
      const lag = (entry as { lag?: unknown } | null)?.lag;
      if (typeof lag === 'number') {
        total += lag;
        seen = true;
      }
    }
  }
  return seen ? `\ntotal lag: ${total}\n` : '';
}

/** `2026-01-01T00:00:00Z` or milliseconds since the epoch. */
function timestamp(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (Number.isNaN(ms))
    throw new InvalidArgumentError(
      'expected an ISO date (2026-01-01T00:00:00Z) or milliseconds since the epoch',
    );
  return ms;
}

/** `robustmq kafka …`: consumer groups, and produce/consume. */
export function registerKafka(program: Command): void {
  const kafka = program
    .command('kafka')
    .description('Kafka: consumer groups with their lag; produce and consume');
  const groups = registerResource(kafka, {
    ...GROUPS,
    description: 'consumer groups: list, describe (lag per partition), reset-offsets, delete',
    idName: 'group id',
    remove: {
      verb: 'delete',
      description: 'delete a consumer group and its committed offsets',
      done: 'deleted',
    },
    summary: totalLag,
  });

  groups
    .command('reset-offsets')
    .description("move a group's committed offsets on a topic (the group must have no members)")
    .argument('<group>', 'group id')
    .requiredOption('-t, --topic <topic>', 'the topic whose offsets move')
    .addOption(
      new Option(
        '--to <position>',
        'where to: the earliest or latest offset, or the first at --timestamp',
      ).choices(['earliest', 'latest', 'timestamp']),
    )
    .option(
      '--timestamp <time>',
      'an ISO date or milliseconds since the epoch (implies --to timestamp)',
      timestamp,
    )
    .action(
      action<{ topic: string; to?: string; timestamp?: number }>(async (context, [group], options) => {
        const to = options.to ?? (options.timestamp !== undefined ? 'timestamp' : undefined);
        if (!to) {
          context.err('robustmq: give --to earliest|latest, or --timestamp <time>\n');
          return ExitCode.Usage;
        }
        if (to === 'timestamp' && options.timestamp === undefined) {
          context.err('robustmq: --to timestamp needs --timestamp <time>\n');
          return ExitCode.Usage;
        }
        const body: Record<string, unknown> = { topic: options.topic, to };
        if (options.timestamp !== undefined) body.timestamp = options.timestamp;
        const result = await context.api.post<unknown>(`${resourcePath(GROUPS, group)}/reset-offsets`, body);
        if (context.output === 'json') {
          context.out(json(result ?? {}));
        } else {
          context.out(`reset offsets of group ${group} on ${options.topic} to ${to}\n`);
          if (result && typeof result === 'object' && Object.keys(result).length) {
            context.out(objectDetails(result as Record<string, unknown>));
          }
        }
      }),
    );

  registerKafkaProduce(kafka);
  registerKafkaConsume(kafka);
}
