import type { Command } from 'commander';
import { CliError, ExitCode } from '../api.js';
import { action } from '../context.js';
import { cell, json, table } from '../output.js';

interface ConfigView {
  settings: Record<string, unknown>;
  runtime: string[];
}

/** Gives `text` the JSON type of the setting's current value, so `10` stays a number. */
function typed(name: string, text: string, current: unknown): unknown {
  if (typeof current === 'number') {
    const n = Number(text);
    if (text.trim() === '' || Number.isNaN(n)) throw new CliError(`${name} takes a number`, ExitCode.Usage);
    return n;
  }
  if (typeof current === 'boolean') {
    if (text !== 'true' && text !== 'false')
      throw new CliError(`${name} takes true or false`, ExitCode.Usage);
    return text === 'true';
  }
  if (typeof current === 'string' || current === undefined) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError(`${name} takes a JSON value`, ExitCode.Usage);
  }
}

function settingsTable(view: ConfigView, names: string[]): string {
  const shown = names.length ? names : Object.keys(view.settings).sort();
  return table(
    ['SETTING', 'VALUE', 'RUNTIME'],
    shown.map((name) => [name, cell(view.settings[name]), view.runtime.includes(name) ? 'yes' : 'no']),
  );
}

/** `robustmq config get|set`. */
export function registerConfig(program: Command): void {
  const config = program
    .command('config')
    .description("the node's effective configuration; change the settings marked runtime");

  config
    .command('get')
    .description('show every setting, or the named ones (one value per line)')
    .argument('[names...]', 'settings such as log.level')
    .action(
      action(async (context, [names]) => {
        const wanted = (names as unknown as string[] | undefined) ?? [];
        const view = await context.api.get<ConfigView>('/config');
        // Own keys only: `constructor` or `toString` are properties of every object, not settings.
        const unknown = wanted.filter((n) => !Object.hasOwn(view.settings, n));
        if (unknown.length) {
          context.err(`robustmq: no such setting: ${unknown.join(', ')}\n`);
          return ExitCode.NotOk;
        }
        if (context.output === 'json') {
          context.out(
            json(
              wanted.length
                ? {
                    settings: Object.fromEntries(wanted.map((n) => [n, view.settings[n]])),
                    runtime: view.runtime.filter((n) => wanted.includes(n)),
                  }
                : view,
            ),
          );
        } else if (wanted.length === 1) {
          context.out(`${cell(view.settings[wanted[0]!])}\n`);
        } else {
          context.out(settingsTable(view, wanted));
        }
      }),
    );

  config
    .command('set')
    .description('change settings at runtime, all or none (e.g. config set log.level=debug)')
    .argument('<name=value...>', 'settings to change')
    .action(
      action(async (context, [assignments]) => {
        const pairs = (assignments as unknown as string[]).map((a) => {
          const eq = a.indexOf('=');
          if (eq <= 0) throw new CliError(`expected name=value, got ${JSON.stringify(a)}`, ExitCode.Usage);
          return [a.slice(0, eq), a.slice(eq + 1)] as const;
        });
        const current = await context.api.get<ConfigView>('/config');
        const body = Object.fromEntries(
          pairs.map(([name, text]) => [
            name,
            typed(name, text, Object.hasOwn(current.settings, name) ? current.settings[name] : undefined),
          ]),
        );
        const view = await context.api.patch<ConfigView>('/config', body);
        const names = pairs.map(([name]) => name);
        context.out(
          context.output === 'json'
            ? json({
                settings: Object.fromEntries(names.map((n) => [n, view.settings[n]])),
                runtime: view.runtime.filter((n) => names.includes(n)),
              })
            : settingsTable(view, names),
        );
      }),
    );
}
