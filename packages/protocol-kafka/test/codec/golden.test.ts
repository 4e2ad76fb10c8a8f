import { Kafka, logLevel } from 'kafkajs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  API_SCHEMAS,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
} from '../../src/codec/index.js';
import { run } from '../helpers/processes.js';
import { startServer, type KafkaServer } from '../helpers/server.js';

/** Frames seen by the recording proxy: requests from clients, responses from the broker. */
interface Exchange {
  client: string;
  request: Buffer;
  response?: Buffer;
}

let server: KafkaServer;
let proxy: Server;
let proxyPort: number;
let currentClient = 'none';
const exchanges: Exchange[] = [];

function frames(onFrame: (frame: Buffer) => void): (data: Buffer) => void {
  let buffered = Buffer.alloc(0);
  return (data) => {
    buffered = Buffer.concat([buffered, data]);
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
      const size = buffered.readInt32BE(0);
      onFrame(Buffer.from(buffered.subarray(4, 4 + size)));
      buffered = buffered.subarray(4 + size);
    }
  };
}

beforeAll(async () => {
  proxy = createServer((downstream: Socket) => {
    const client = currentClient;
    const pending: Exchange[] = [];
    const upstream = connect(server.port, '127.0.0.1');
    downstream.on('data', (data: Buffer) => upstream.write(data));
    downstream.on(
      'data',
      frames((request) => {
        const exchange = { client, request };
        exchanges.push(exchange);
        // acks=0 produce requests get no response.
        const acksZero = request.readInt16BE(0) === 0 && decodeAcks(request) === 0;
        if (!acksZero) pending.push(exchange);
      }),
    );
    upstream.on('data', (data: Buffer) => downstream.write(data));
    upstream.on(
      'data',
      frames((response) => {
        const exchange = pending.shift();
        if (exchange) exchange.response = response;
      }),
    );
    downstream.on('close', () => upstream.destroy());
    upstream.on('close', () => downstream.destroy());
    downstream.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyPort = (proxy.address() as { port: number }).port;
  server = await startServer({ kafka: [`advertised_port = ${proxyPort}`] });
}, 30_000);

afterAll(async () => {
  proxy?.close();
  await server?.stop();
});

function decodeAcks(frame: Buffer): number {
  try {
    return (decodeRequest(frame).request as { acks: number }).acks;
  } catch {
    return -1;
  }
}

describe('golden bytes from real clients', () => {
  it('captures traffic from kcat, KafkaJS and kafka-python through a recording proxy', async () => {
    const bootstrap = `127.0.0.1:${proxyPort}`;
    currentClient = 'kcat';
    await run('/usr/bin/kcat', ['-b', bootstrap, '-t', 'golden', '-P', '-K', ':', '-z', 'lz4'], {
      input: 'k1:v1\nk2:v2\n',
    });
    await run('/usr/bin/kcat', ['-b', bootstrap, '-t', 'golden', '-C', '-o', 'beginning', '-e']);
    currentClient = 'kafkajs';
    const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING, clientId: 'golden-js' });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'golden-js', numPartitions: 2 }] });
    await admin.fetchTopicOffsets('golden-js');
    await admin.describeConfigs({ resources: [{ type: 2, name: 'golden-js' }], includeSynonyms: false });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'golden-js', messages: [{ key: 'a', value: 'b', headers: { h: 'v' } }] });
    await producer.disconnect();
    currentClient = 'kafka-python';
    await run('/usr/bin/python3', [
      '-c',
      `from kafka import KafkaProducer; p = KafkaProducer(bootstrap_servers='${bootstrap}'); p.send('golden-py', b'x').get(10); p.close()`,
    ]);

    const clients = new Set(exchanges.map((e) => e.client));
    expect(clients).toEqual(new Set(['kcat', 'kafkajs', 'kafka-python']));
    const apis = new Set<string>();
    for (const exchange of exchanges) {
      const { header, request } = decodeRequest(exchange.request);
      const { requestApiKey: apiKey, requestApiVersion: version } = header;
      apis.add(`${exchange.client} ${API_SCHEMAS.get(apiKey)!.name} v${version}`);
      // What a client sent decodes, and encodes back to the same bytes.
      const again = encodeRequest(
        {
          apiKey,
          apiVersion: version,
          correlationId: header.correlationId,
          clientId: header.clientId ?? null,
        },
        request,
      );
      expect(again.subarray(4).equals(exchange.request), `${exchange.client} ${apiKey} v${version}`).toBe(
        true,
      );
      if (exchange.response) {
        const { correlationId, response } = decodeResponse(exchange.response, apiKey, version);
        expect(correlationId).toBe(header.correlationId);
        const encoded = encodeResponse(apiKey, version, correlationId, response);
        expect(encoded.subarray(4).equals(exchange.response)).toBe(true);
      }
    }
    // The handshake each client starts with, in the version it picks.
    expect(apis).toContain('kcat ApiVersions v3');
    expect(apis).toContain('kafkajs ApiVersions v2');
    expect([...apis].some((api) => api.startsWith('kcat Produce v'))).toBe(true);
    expect([...apis].some((api) => api.startsWith('kcat Fetch v'))).toBe(true);
    expect([...apis].some((api) => api.startsWith('kafkajs CreateTopics'))).toBe(true);
    expect([...apis].some((api) => api.startsWith('kafka-python Produce'))).toBe(true);
  }, 90_000);
});
