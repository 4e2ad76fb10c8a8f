import { Option, type Command } from 'commander';
import { action } from '../context.js';
import { listOptions, showList, type ListOptions } from '../list.js';
import { json, removal, table } from '../output.js';

interface AclRule {
  id: string;
  principal: string;
  action: string;
  topic: string;
  permission: 'allow' | 'deny';
}

const ACTIONS = ['publish', 'subscribe', 'create', 'delete', 'describe', 'alter', 'all'];

function rules(items: AclRule[]): string {
  return table(
    ['ID', 'PERMISSION', 'PRINCIPAL', 'ACTION', 'TOPIC'],
    items.map((r) => [r.id, r.permission, r.principal, r.action, r.topic]),
  );
}

/** `robustmq acl list|create|delete`. */
export function registerAcl(program: Command): void {
  const acl = program
    .command('acl')
    .description(
      'access rules: who may publish, subscribe, create… on which topics (superusers bypass them)',
    );

  listOptions(acl.command('list').alias('ls').description('list access rules')).action(
    action<ListOptions>(async (context, _args, options) => {
      await showList<AclRule>(context, '/acls', options, rules);
    }),
  );

  acl
    .command('create')
    .description('add an access rule; a matching deny wins over an allow')
    .requiredOption('--principal <user>', 'the user it applies to, or * for everyone')
    .addOption(new Option('--action <action>', 'what it governs').choices(ACTIONS).makeOptionMandatory())
    .requiredOption('--topic <filter>', 'the topics, as an MQTT filter (sensors/+/temp, logs/#, #)')
    .addOption(
      new Option('--permission <permission>', 'allow or deny').choices(['allow', 'deny']).default('allow'),
    )
    .action(
      action<{ principal: string; action: string; topic: string; permission: string }>(
        async (context, _args, options) => {
          const rule = await context.api.post<AclRule>('/acls', {
            principal: options.principal,
            action: options.action,
            topic: options.topic,
            permission: options.permission,
          });
          context.out(context.output === 'json' ? json(rule) : `created rule ${rule.id}\n`);
        },
      ),
    );

  acl
    .command('delete')
    .alias('rm')
    .description('delete an access rule')
    .argument('<id>', 'rule id (see acl list)')
    .option('--if-exists', 'succeed when the rule does not exist')
    .action(
      action<{ ifExists?: boolean }>(async (context, [id], options) => {
        const removed = await context.api.remove(`/acls/${encodeURIComponent(id!)}`, options.ifExists);
        context.out(removal(context.output, removed, 'deleted', `rule ${id}`, id!));
      }),
    );
}
