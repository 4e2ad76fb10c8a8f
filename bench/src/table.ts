/** Column alignment: numbers read best right-aligned. */
export type Align = 'left' | 'right';

export interface Column {
  title: string;
  align?: Align;
}

/**
 * A Markdown table padded so it also reads as plain text, so what the terminal shows can go into
 * BENCHMARKS.md as it is.
 */
export function markdownTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((column, i) =>
    Math.max(3, column.title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const cell = (text: string, i: number): string =>
    columns[i]?.align === 'right' ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0);
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `| ${widths
    .map((width, i) => (columns[i]?.align === 'right' ? `${'-'.repeat(width - 1)}:` : '-'.repeat(width)))
    .join(' | ')} |`;
  return [line(columns.map((c) => c.title)), rule, ...rows.map(line)].join('\n');
}

/** Decimal megabytes (10^6 bytes), as disk tools such as `dd` and `fio` report them. */
export const MB = 1_000_000;
export const MiB = 1024 * 1024;

/** A throughput in MB/s with three significant figures, at least no decimals. */
export function formatMBps(bytesPerSecond: number): string {
  const mbps = bytesPerSecond / MB;
  return mbps >= 100 ? mbps.toFixed(0) : mbps >= 10 ? mbps.toFixed(1) : mbps.toFixed(2);
}

/** A count per second, with thousands separators. */
export function formatRate(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en-US');
}

/** A ratio as a whole percentage. */
export function formatPercent(ratio: number): string {
  return `${(ratio * 100).toFixed(0)}%`;
}
