import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFixtures } from '../helpers/codec-fixtures.js';
import { run } from '../helpers/processes.js';
import * as codec from '../../src/codec/index.js';
import { decodeMessage, encodeMessage, type MessageCodec, type Records } from '../../src/codec/index.js';

const fixtures = loadFixtures();

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
    const bytes = encodeMessage(codec.MetadataRequest, { topics: [] }, 0);
    expect(bytes.length).toBe(4);
    const decoded = decodeMessage(codec.MetadataRequest, Buffer.from([0, 0, 0, 0]), 3);
    expect(decoded).toMatchObject({ topics: [], allowAutoTopicCreation: true });
  });

  it('refuses to write a null or a non-number where the version allows none', () => {
    const topic = (name: string | null) => ({
      errorCode: 0,
      name,
      partitions: [
        {
          errorCode: 0,
          partitionIndex: 0,
          leaderId: 1,
          leaderEpoch: 0,
          replicaNodes: [1],
          isrNodes: [1],
          offlineReplicas: [],
        },
      ],
    });
    const metadata = (topics: unknown[]) =>
      ({ brokers: [], clusterId: null, controllerId: 1, topics }) as unknown as codec.MetadataResponse;
    // A topic name may be null from v12 only.
    expect(() => encodeMessage(codec.MetadataResponse, metadata([topic(null)]), 11)).toThrow(
      /MetadataResponseTopic\.name .*version 11/,
    );
    expect(() => encodeMessage(codec.MetadataResponse, metadata([topic(null)]), 12)).not.toThrow();
    expect(() => encodeMessage(codec.MetadataResponse, metadata([topic('a')]), 11)).not.toThrow();
    // Arrays: null means every topic only from v1; the brokers never may be null.
    expect(() => encodeMessage(codec.MetadataRequest, { topics: null }, 0)).toThrow(
      /MetadataRequest\.topics/,
    );
    expect(encodeMessage(codec.MetadataRequest, { topics: null }, 1)).toEqual(
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
    );
    expect(() =>
      encodeMessage(codec.MetadataResponse, { ...metadata([]), brokers: null } as never, 9),
    ).toThrow(/MetadataResponse\.brokers/);
    // Bytes, elements of arrays and numbers.
    expect(() =>
      encodeMessage(
        codec.SaslAuthenticateResponse,
        { errorCode: 0, errorMessage: null, authBytes: null } as never,
        2,
      ),
    ).toThrow(/SaslAuthenticateResponse\.authBytes/);
    const badNode = { ...topic('a'), partitions: [{ ...topic('a').partitions[0]!, replicaNodes: [null] }] };
    expect(() => encodeMessage(codec.MetadataResponse, metadata([badNode]), 9)).toThrow();
    expect(() =>
      encodeMessage(codec.MetadataResponse, { ...metadata([]), controllerId: null } as never, 9),
    ).toThrow();
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

/** The messages with a records field, and that field's name. */
const RECORDS_FIELDS: Record<string, string> = {
  ProduceRequest: 'records',
  FetchResponse: 'records',
  FetchSnapshotResponse: 'unalignedRecords',
  ShareFetchResponse: 'records',
};

/** A copy of `value` with each records field's buffer given by `split` (pieces or one buffer). */
function withRecords(value: unknown, field: string, split: (records: Buffer) => unknown): unknown {
  if (Array.isArray(value)) return value.map((e) => withRecords(e, field, split));
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key,
      key === field && Buffer.isBuffer(inner) ? split(inner) : withRecords(inner, field, split),
    ]),
  );
}

describe('records given in pieces', () => {
  const splits: Record<string, (records: Buffer) => Uint8Array[]> = {
    'one piece per byte': (records) => [...records].map((byte) => Buffer.from([byte])),
    'an empty piece first': (records) => [Buffer.alloc(0), records],
    'plain Uint8Arrays': (records) => [
      new Uint8Array(records.subarray(0, 1)),
      new Uint8Array(records.subarray(1)),
    ],
  };

  for (const [name, field] of Object.entries(RECORDS_FIELDS)) {
    it(`${name} writes the same bytes as the joined records, in every version`, () => {
      const fixture = fixtures.find((f) => f.name === name)!;
      const messageCodec = (codec as unknown as Record<string, MessageCodec<unknown>>)[name]!;
      for (const { version, value } of fixture.cases) {
        const joined = encodeMessage(messageCodec, value, version);
        for (const [how, split] of Object.entries(splits)) {
          const pieces = withRecords(value, field, split);
          expect(messageCodec.size(pieces, version), `v${version} ${how} size`).toBe(joined.length);
          expect(encodeMessage(messageCodec, pieces, version).equals(joined), `v${version} ${how}`).toBe(
            true,
          );
        }
      }
    });
  }

  it('covers every message with a records field', () => {
    const generated = readdirSync(join(import.meta.dirname, '../../src/codec/messages'))
      .map((file) => readFileSync(join(import.meta.dirname, '../../src/codec/messages', file), 'utf8'))
      .filter((source) => source.includes('writeNullableRecords('));
    expect(generated).toHaveLength(Object.keys(RECORDS_FIELDS).length);
  });

  it('sends large pieces of every Fetch version by reference, the frame equal to the joined one', () => {
    const batches = [
      Buffer.alloc(40_000, 1),
      Buffer.alloc(10, 2),
      Buffer.alloc(70_000, 3),
      Buffer.alloc(5, 4),
    ];
    const joined = Buffer.concat(batches);
    const body = (records: Records) => ({
      responses: [
        { topic: 't', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 9n, records }] },
      ],
    });
    const { minVersion, maxVersion } = codec.FetchResponse;
    for (let version = minVersion; version <= maxVersion; version++) {
      const chunks = codec.encodeResponseChunks(codec.ApiKey.fetch, version, 3, body(batches));
      // The two pieces of 32 KiB or more are chunks of their own, not copies.
      expect(chunks.filter((chunk) => chunk === batches[0] || chunk === batches[2])).toHaveLength(2);
      const expected = codec.encodeResponse(codec.ApiKey.fetch, version, 3, body(joined));
      expect(Buffer.concat(chunks).equals(expected), `v${version}`).toBe(true);
      expect(codec.encodeResponse(codec.ApiKey.fetch, version, 3, body(batches)).equals(expected)).toBe(true);
      const decoded = codec.decodeResponse(expected.subarray(4), codec.ApiKey.fetch, version)
        .response as codec.FetchResponse;
      expect(decoded.responses[0]!.partitions[0]!.records!.equals(joined)).toBe(true);
    }
  });
});

describe('the generator', () => {
  it('reproduces the committed codec and fixtures from the schemas', async () => {
    const script = join(import.meta.dirname, '../../scripts/generate.mjs');
    const { stdout } = await run(process.execPath, [script, '--check'], { timeoutMs: 120_000 });
    expect(stdout).toMatch(/^\d+ generated files are up to date/);
  }, 120_000);
});
