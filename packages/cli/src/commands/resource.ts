import type { Command } from 'commander';
import { action, type Context } from '../context.js';
import { listOptions, showList, type ListOptions } from '../list.js';
import { json, objectDetails, objectTable, removal } from '../output.js';

/** An item of a protocol's admin resource: plain JSON with an `id`. */
export type Item = { id: string } & Record<string, unknown>;

export interface ResourceSpec {
  /** e.g. `mqtt` */
  protocol: string;
  /** e.g. `clients` */
  resource: string;
  description: string;
  /** What one id names, for help text: `client id`, `topic`. */
  idName: string;
  /** The verb that removes an item (`kick`, `delete`), when the resource can remove. */
  remove?: { verb: string; description: string; done: string };
  /** Extra lines under an item's details (e.g. the total lag of a Kafka group). */
  summary?: (item: Item) => string;
}

/** The path of a resource, or of one item of it. */
export function resourcePath(spec: Pick<ResourceSpec, 'protocol' | 'resource'>, id?: string): string {
  const base = `/${spec.protocol}/${spec.resource}`;
  return id === undefined ? base : `${base}/${encodeURIComponent(id)}`;
}

/** Prints one item in full. */
export function printItem(context: Context, item: Item, summary?: (item: Item) => string): void {
  if (context.output === 'json') context.out(json(item));
  else context.out(objectDetails(item) + (summary ? summary(item) : ''));
}

/**
 * Registers `robustmq <protocol> <resource> list|describe|<remove verb>` for a resource a protocol
 * plugin serves under `/api/v1/<protocol>/<resource>`. `list` is the default, so
 * `robustmq mqtt clients` lists the clients.
 */
export function registerResource(parent: Command, spec: ResourceSpec): Command {
  const command = parent.command(spec.resource).description(spec.description);

  listOptions(
    command
      .command('list', { isDefault: true })
      .alias('ls')
      .description(`list ${spec.protocol} ${spec.resource}`),
  ).action(
    action<ListOptions>(async (context, _args, options) => {
      await showList<Item>(context, resourcePath(spec), options, objectTable);
    }),
  );

  command
    .command('describe')
    .alias('get')
    .description(`show one of the ${spec.resource} in full`)
    .argument('<id>', spec.idName)
    .action(
      action(async (context, [id]) => {
        printItem(context, await context.api.get<Item>(resourcePath(spec, id)), spec.summary);
      }),
    );

  const remove = spec.remove;
  if (remove) {
    command
      .command(remove.verb)
      .description(remove.description)
      .argument('<id>', spec.idName)
      .option('--if-exists', 'succeed when it does not exist')
      .action(
        action<{ ifExists?: boolean }>(async (context, [id], options) => {
          const removed = await context.api.remove(resourcePath(spec, id), options.ifExists);
          context.out(removal(context.output, removed, remove.done, id!, id!));
        }),
      );
  }
  return command;
}
