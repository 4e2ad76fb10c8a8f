import { describe, expect, it } from 'vitest';
import {
  API_SCHEMAS,
  ApiKey,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeRequestChunks,
  encodeResponse,
  encodeResponseChunks,
  requestHeaderVersion,
  responseHeaderVersion,
  type MetadataRequest,
} from '../../src/codec/index.js';

describe('frames and header versions', () => {
  it('picks header versions from flexibility, with the ApiVersions response exception', () => {
    expect(requestHeaderVersion(ApiKey.metadata, 8)).toBe(1);
    expect(requestHeaderVersion(ApiKey.metadata, 9)).toBe(2);
    expect(responseHeaderVersion(ApiKey.metadata, 8)).toBe(0);
    expect(responseHeaderVersion(ApiKey.metadata, 9)).toBe(1);
    expect(requestHeaderVersion(ApiKey.apiVersions, 3)).toBe(2);
    expect(responseHeaderVersion(ApiKey.apiVersions, 3)).toBe(0);
    expect(API_SCHEMAS.get(ApiKey.produce)).toMatchObject({ name: 'Produce', minVersion: 0, flexibleMin: 9 });
  });

  it('keeps the client id a classic int16 string in request header v2', () => {
    const frame = encodeRequest(
      { apiKey: ApiKey.metadata, apiVersion: 12, correlationId: 7, clientId: 'me' },
      { topics: null, allowAutoTopicCreation: false },
    );
    expect(frame.readInt32BE(0)).toBe(frame.length - 4);
    // size, key, version, correlation id, then int16 length 2 and "me", then an empty tag section.
    expect(frame.subarray(4, 16)).toEqual(Buffer.from([0, 3, 0, 12, 0, 0, 0, 7, 0, 2, 0x6d, 0x65]));
    expect(frame[16]).toBe(0);
    const { header, request } = decodeRequest(frame.subarray(4));
    expect(header).toEqual({ requestApiKey: 3, requestApiVersion: 12, correlationId: 7, clientId: 'me' });
    expect((request as MetadataRequest).topics).toBeNull();
  });

  it('encodes a flexible response with header v1 and ApiVersions v3 with header v0', () => {
    const flexible = encodeResponse(ApiKey.metadata, 12, 9, { brokers: [], topics: [] });
    expect(flexible.readInt32BE(4)).toBe(9);
    expect(flexible[8]).toBe(0); // the header's empty tag section
    expect(decodeResponse(flexible.subarray(4), ApiKey.metadata, 12).correlationId).toBe(9);
    const versions = encodeResponse(ApiKey.apiVersions, 3, 5, { errorCode: 0, apiKeys: [] });
    expect(versions.readInt32BE(4)).toBe(5);
    expect(versions.readInt16BE(8)).toBe(0); // the body's error code follows the correlation id at once
  });

  it('references large Fetch records instead of copying them, with the same bytes on the wire', () => {
    const records = Buffer.alloc(100_000, 7);
    const body = {
      responses: [
        {
          topic: 't',
          partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 5n, records }],
        },
      ],
    };
    const chunks = encodeResponseChunks(ApiKey.fetch, 12, 3, body);
    expect(chunks.length).toBe(3);
    expect(chunks[1]).toBe(records);
    expect(Buffer.concat(chunks).equals(encodeResponse(ApiKey.fetch, 12, 3, body))).toBe(true);
  });

  it('references large Produce records in a request instead of copying them, with the same bytes', () => {
    const records = Buffer.alloc(70_000, 9);
    const header = { apiKey: ApiKey.produce, apiVersion: 9, correlationId: 4, clientId: 'c' };
    const body = {
      transactionalId: null,
      acks: -1,
      timeoutMs: 1000,
      topicData: [{ name: 't', partitionData: [{ index: 0, records }] }],
    };
    const chunks = encodeRequestChunks(header, body);
    expect(chunks.length).toBe(3);
    expect(chunks[1]).toBe(records);
    const whole = encodeRequest(header, body);
    expect(Buffer.concat(chunks).equals(whole)).toBe(true);
    const decoded = decodeRequest(whole.subarray(4)).request as typeof body;
    expect(decoded.topicData[0]!.partitionData[0]!.records.equals(records)).toBe(true);
    // Small requests stay one buffer.
    const small = {
      ...body,
      topicData: [{ name: 't', partitionData: [{ index: 0, records: records.subarray(0, 10) }] }],
    };
    expect(encodeRequestChunks(header, small)).toEqual([encodeRequest(header, small)]);
  });

  it('refuses unknown API keys and versions', () => {
    const frame = encodeRequest(
      { apiKey: ApiKey.metadata, apiVersion: 1, correlationId: 1, clientId: null },
      { topics: [] },
    );
    const unknownVersion = Buffer.from(frame.subarray(4));
    unknownVersion.writeInt16BE(99, 2);
    expect(() => decodeRequest(unknownVersion)).toThrow(/no version 99/);
    const unknownKey = Buffer.from(frame.subarray(4));
    unknownKey.writeInt16BE(999, 0);
    expect(() => decodeRequest(unknownKey)).toThrow(/unknown API key 999/);
  });
});
