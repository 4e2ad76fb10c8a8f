import type { Command } from 'commander';
import { action } from '../context.js';
import { listOptions, showList, type ListOptions } from '../list.js';
import { json, removal, table } from '../output.js';
import { newPassword } from '../password.js';

interface User {
  name: string;
  superuser: boolean;
  createdAt: string | number;
}

interface PasswordOptions {
  newPassword?: string;
  newPasswordStdin?: boolean;
}

const userPath = (name: string) => `/users/${encodeURIComponent(name)}`;

function withPasswordOptions(command: Command): Command {
  return command
    .option('--new-password <password>', "the user's password (visible to other local users in ps)")
    .option('--new-password-stdin', "read the user's password from the first line of stdin");
}

/** `robustmq user list|create|delete|passwd`. */
export function registerUser(program: Command): void {
  const user = program
    .command('user')
    .description('users who connect with a password (MQTT, Kafka SASL/SCRAM, AMQP SASL) or administer');

  listOptions(user.command('list').alias('ls').description('list users')).action(
    action<ListOptions>(async (context, _args, options) => {
      await showList<User>(context, '/users', options, (users) =>
        table(
          ['NAME', 'SUPERUSER', 'CREATED'],
          users.map((u) => [u.name, u.superuser ? 'yes' : 'no', new Date(u.createdAt).toISOString()]),
        ),
      );
    }),
  );

  withPasswordOptions(user.command('create').description('create a user').argument('<name>', 'user name'))
    .option('--superuser', 'may do anything, including use the admin API')
    .action(
      action<PasswordOptions & { superuser?: boolean }>(async (context, [name], options) => {
        const password = await newPassword(options);
        const created = await context.api.post<User | undefined>('/users', {
          name,
          password,
          superuser: options.superuser ?? false,
        });
        context.out(
          context.output === 'json'
            ? json(created ?? { name, superuser: options.superuser ?? false })
            : `created user ${name}${options.superuser ? ' (superuser)' : ''}\n`,
        );
      }),
    );

  user
    .command('delete')
    .alias('rm')
    .description('delete a user')
    .argument('<name>', 'user name')
    .option('--if-exists', 'succeed when the user does not exist')
    .action(
      action<{ ifExists?: boolean }>(async (context, [name], options) => {
        const removed = await context.api.remove(userPath(name!), options.ifExists);
        context.out(removal(context.output, removed, 'deleted', `user ${name}`, name!));
      }),
    );

  withPasswordOptions(
    user.command('passwd').description("change a user's password").argument('<name>', 'user name'),
  ).action(
    action<PasswordOptions>(async (context, [name], options) => {
      const password = await newPassword(options);
      await context.api.put(`${userPath(name!)}/password`, { password });
      context.out(context.output === 'json' ? json({ changed: name }) : `changed the password of ${name}\n`);
    }),
  );
}
