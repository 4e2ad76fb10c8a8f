import { InvalidArgumentError } from 'commander';

/** An option parser for a whole number within `min..max`. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A retention limit as given: a number, or `unlimited` (sent as null; commander keeps no null). */
export type Limit = number | 'unlimited';

/** The admin API's form of a limit: null for unlimited. */
export const limitValue = (limit: Limit): number | null => (limit === 'unlimited' ? null : limit);

/** `7d`, `12h`, `30m`, `500ms`, a bare number of milliseconds, or `unlimited`. */
export function duration(value: string): Limit {
  if (value === 'unlimited') return value;
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('expected a duration such as 500ms, 30s, 12h, 7d or unlimited');
  return Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!;
}

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** `1073741824`, `512MiB`, `1GiB`, `10GB`, or `unlimited`. */
export function bytes(value: string): Limit {
  if (value === 'unlimited') return value;
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
  const unit = BYTE_UNITS[(match?.[2] || 'b').toLowerCase()];
  if (!match || unit === undefined) {
    throw new InvalidArgumentError('expected a size such as 1048576, 512MiB, 10GB or unlimited');
  }
  return Math.round(Number(match[1]) * unit);
}

/** Collects repeated `key=value` options into an object. */
export function keyValue(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** Collects a repeated option into a list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
