import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const FIXTURES = join(import.meta.dirname, '..', 'codec', 'fixtures');

/** One message's generated fixture: a value of every version its schema defines. */
export interface Fixture {
  name: string;
  cases: Array<{ version: number; value: unknown }>;
}

/** JSON fixtures spell bigints and bytes as `{ $bigint }` and `{ $bytes }` (base64). */
function revive(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object') {
    if ('$bigint' in value) return BigInt((value as { $bigint: string }).$bigint);
    if ('$bytes' in value) return Buffer.from((value as { $bytes: string }).$bytes, 'base64');
  }
  return value;
}

/** Every message's fixture, from `test/codec/fixtures`. */
export function loadFixtures(): Fixture[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(FIXTURES, f), 'utf8'), revive) as Fixture);
}
