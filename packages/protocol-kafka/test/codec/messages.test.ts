import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/processes.js';
import * as codec from '../../src/codec/index.js';
import { decodeMessage, encodeMessage, type MessageCodec } from '../../src/codec/index.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

interface Fixture {
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

const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(FIXTURES, f), 'utf8'), revive) as Fixture);

describe('generated message codecs', () => {
  it('has a fixture for every schema', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(186);
  });

  for (const fixture of fixtures) {
    it(`${fixture.name} round-trips every version`, () => {
      const messageCodec = (codec as unknown as Record<string, MessageCodec<unknown>>)[fixture.name]!;
      expect(messageCodec.name).toBe(fixture.name);
      expect(fixture.cases.map((c) => c.version)).toEqual(
        Array.from(
          { length: messageCodec.maxVersion - messageCodec.minVersion + 1 },
          (_, i) => i + messageCodec.minVersion,
        ),
      );
      for (const { version, value } of fixture.cases) {
        const bytes = encodeMessage(messageCodec, value, version);
        expect(bytes.length, `v${version} size`).toBe(messageCodec.size(value, version));
        const decoded = decodeMessage(messageCodec, bytes, version);
        expect(decoded, `v${version}`).toEqual(value);
        expect(encodeMessage(messageCodec, decoded, version).equals(bytes), `v${version} re-encode`).toBe(
          true,
        );
      }
    });
  }

  it('decodes defaults for fields a version does not carry', () => {
    const bytes = encodeMessage(codec.MetadataRequest, { topics: null }, 0);
    expect(bytes.length).toBe(4);
    const decoded = decodeMessage(codec.MetadataRequest, Buffer.from([0, 0, 0, 0]), 3);
    expect(decoded).toMatchObject({ topics: [], allowAutoTopicCreation: true });
  });

  it('rejects truncated bodies and trailing bytes', () => {
    const bytes = encodeMessage(codec.MetadataRequest, { topics: [{ name: 'a' }] }, 9);
    expect(() => decodeMessage(codec.MetadataRequest, bytes.subarray(0, bytes.length - 2), 9)).toThrow(
      codec.ProtocolError,
    );
    expect(() => decodeMessage(codec.MetadataRequest, Buffer.concat([bytes, Buffer.from([0])]), 9)).toThrow(
      /left after/,
    );
  });
});

describe('the generator', () => {
  it('reproduces the committed codec and fixtures from the schemas', async () => {
    const script = join(import.meta.dirname, '../../scripts/generate.mjs');
    const { stdout } = await run(process.execPath, [script, '--check'], { timeoutMs: 120_000 });
    expect(stdout).toMatch(/^\d+ generated files are up to date/);
  }, 120_000);
});
