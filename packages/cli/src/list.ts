import type { Command } from 'commander';
import { integer } from './args.js';
import type { Context } from './context.js';
import { json } from './output.js';

/** A page as every admin API list route answers it. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface ListOptions {
  limit: number;
  after?: string;
  all?: boolean;
}

/** Adds `--limit`, `--after` and `--all` to a list command. */
export function listOptions(command: Command): Command {
  return command
    .option('-l, --limit <n>', 'items per page, 1..1000', integer(1, 1000), 100)
    .option('--after <id>', 'start after this item (the "next" of the previous page)')
    .option('-a, --all', 'follow the pages to the end');
}

/** Fetches one page, or every page with `--all`. */
export async function fetchList<T>(context: Context, path: string, options: ListOptions): Promise<Page<T>> {
  const items: T[] = [];
  let after = options.after;
  for (;;) {
    const page = await context.api.get<Page<T>>(path, { limit: options.limit, after });
    items.push(...page.items);
    if (!options.all || page.next === null || page.next === undefined) {
      return { items, next: page.next ?? null };
    }
    after = page.next;
  }
}

/**
 * Prints a list: the page as JSON with `--output json`, otherwise `render`'s table, then on stderr
 * how to see more when there is more.
 */
export function printList<T>(context: Context, page: Page<T>, render: (items: T[]) => string): void {
  if (context.output === 'json') {
    context.out(json(page));
    return;
  }
  context.out(page.items.length ? render(page.items) : '(none)\n');
  if (page.next !== null) {
    context.err(`more after ${JSON.stringify(page.next)}: add --after ${quote(page.next)}, or --all\n`);
  }
}

function quote(text: string): string {
  return /^[\w./:@-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Fetches and prints a list in one step. */
export async function showList<T>(
  context: Context,
  path: string,
  options: ListOptions,
  render: (items: T[]) => string,
): Promise<void> {
  printList(context, await fetchList<T>(context, path, options), render);
}
