export type OutputFormat = 'table' | 'json';

/** Renders rows as aligned columns, the way `kubectl get` does. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Renders `key: value` lines with aligned values. */
export function fields(pairs: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n') + '\n';
}

/** Pretty JSON with a final newline, for `--output json`. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/**
 * What a delete says: `<done> <what>` (`deleted topic orders`), or, when `--if-exists` found
 * nothing, that there was nothing to do; in JSON `{ "<done>": id }` or `{ "absent": id }`.
 */
export function removal(output: string, removed: boolean, done: string, what: string, id: string): string {
  if (output === 'json') return json(removed ? { [done]: id } : { absent: id });
  return removed ? `${done} ${what}\n` : `${what} does not exist: nothing ${done}\n`;
}

/** One cell: `-` for nothing, arrays of plain values joined, anything else as compact JSON. */
export function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value === '' ? '-' : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) return value.length ? value.join(',') : '-';
    return String(value.length);
  }
  return JSON.stringify(value);
}

/** `clientId` -> `CLIENT ID`: a column header from a JSON field name. */
export function header(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[-_.]/g, ' ')
    .toUpperCase();
}

type Row = Readonly<Record<string, unknown>>;

const isRow = (value: unknown): value is Row =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A table of objects whose fields the CLI does not know in advance (a protocol's admin
 * resources): one column per field, in first-seen order; a list of objects shows as its length,
 * a nested object is left to the details view.
 */
export function objectTable(rows: readonly Row[]): string {
  const columns: string[] = [];
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) {
      if (!columns.includes(key) && !isRow(value)) {
        columns.push(key);
      }
    }
  }
  if (columns.length === 0) columns.push('id');
  return table(
    columns.map(header),
    rows.map((row) => columns.map((c) => cell(row[c]))),
  );
}

/**
 * One object shown in full: its plain fields as `key: value` lines, each nested object as more
 * lines, each list of objects as a table under its name.
 */
export function objectDetails(item: Row): string {
  const plain: Array<[string, string]> = [];
  const sections: string[] = [];
  for (const [key, value] of Object.entries(item)) {
    if (Array.isArray(value) && value.some(isRow)) {
      sections.push(`${header(key)}\n` + (value.length ? objectTable(value.filter(isRow)) : '(none)\n'));
    } else if (isRow(value)) {
      const entries = Object.entries(value);
      if (entries.length === 0) plain.push([key, '-']);
      for (const [k, v] of entries) plain.push([`${key}.${k}`, cell(v)]);
    } else {
      plain.push([key, cell(value)]);
    }
  }
  return [plain.length ? fields(plain) : '', ...sections].filter(Boolean).join('\n');
}

const SIZE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 -> `1.5 KiB`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-';
  if (bytes < 0) return 'unlimited';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${SIZE_UNITS[unit]}`;
}

/** 90061000 ms -> `1d 1h 1m 1s`; null or negative is unlimited. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || ms < 0) return 'unlimited';
  if (ms < 1000) return `${ms}ms`;
  return formatSeconds(Math.floor(ms / 1000));
}

/** 3725 -> `1h 2m 5s`. */
export function formatSeconds(total: number): string {
  const seconds = Math.floor(total);
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', s || !(d || h || m) ? `${s}s` : '']
    .filter(Boolean)
    .join(' ');
}
