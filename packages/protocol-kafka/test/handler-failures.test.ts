import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISPATCH, type ApiEntry } from '../src/broker/dispatch.js';
import type { ApiHandler } from '../src/broker/handler.js';
import {
  KafkaErrorCode,
  type ApiVersionsResponse,
  type DescribeClusterResponse,
  type MetadataResponse,
} from '../src/codec/index.js';
import { startFaultyNode, type FaultyNode } from './helpers/faulty-node.js';
import { RawClient } from './helpers/raw-client.js';

// A handler with a bug (a response its version cannot carry, or an exception) is answered with the
// API's error code where it has one, else the connection closes: a client never gets bytes that
// do not mean what they say.

let node: FaultyNode;

beforeAll(async () => {
  node = await startFaultyNode();
});

afterAll(async () => {
  await node?.stop();
});

/** Runs `body` with the handler of `apiKey` replaced by `handler`. */
async function withHandler(
  apiKey: number,
  // The table holds handlers of every request and response type.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  handler: ApiHandler<any, any>,
  body: () => Promise<void>,
): Promise<void> {
  const table = DISPATCH as Map<number, ApiEntry>;
  const entry = table.get(apiKey)!;
  table.set(apiKey, { ...entry, handler });
  try {
    await body();
  } finally {
    table.set(apiKey, entry);
  }
}

describe('a handler bug', () => {
  it('answers UNKNOWN_SERVER_ERROR for a response with a null its version does not allow', async () => {
    const client = await RawClient.open(node.port);
    try {
      await withHandler(
        60,
        () =>
          Promise.resolve({
            throttleTimeMs: 0,
            errorCode: 0,
            errorMessage: null,
            clusterId: null,
            controllerId: 1,
            brokers: [],
            clusterAuthorizedOperations: 0,
          }),
        async () => {
          const described = await client.request<DescribeClusterResponse>(60, 0, {
            includeClusterAuthorizedOperations: false,
          });
          expect(described.errorCode).toBe(KafkaErrorCode.unknownServerError);
        },
      );
      expect(node.logs.some((line) => line.msg === 'cannot encode response')).toBe(true);
      const versions = await client.request<ApiVersionsResponse>(18, 3, {
        clientSoftwareName: 'test',
        clientSoftwareVersion: '1',
      });
      expect(versions.errorCode).toBe(0);
    } finally {
      client.close();
    }
  });

  it('answers UNKNOWN_SERVER_ERROR when a handler throws, if the API has an error code', async () => {
    const client = await RawClient.open(node.port);
    try {
      await withHandler(
        60,
        () => Promise.reject(new TypeError('a bug')),
        async () => {
          const described = await client.request<DescribeClusterResponse>(60, 0, {
            includeClusterAuthorizedOperations: false,
          });
          expect(described.errorCode).toBe(KafkaErrorCode.unknownServerError);
        },
      );
    } finally {
      client.close();
    }
  });

  it('closes the connection, sending nothing, when the API has no error code to say so', async () => {
    const client = await RawClient.open(node.port);
    try {
      await withHandler(
        3,
        () =>
          Promise.resolve({
            throttleTimeMs: 0,
            brokers: [],
            clusterId: null,
            controllerId: 1,
            topics: [{ errorCode: 0, name: null, isInternal: false, partitions: [] }],
          } satisfies MetadataResponse),
        async () => {
          client.send(3, 9, { topics: [{ name: 'a' }], allowAutoTopicCreation: false });
          await client.closed;
        },
      );
      await expect(client.nextFrame(100)).rejects.toThrow(/no response frame/);
    } finally {
      client.close();
    }
  });
});
