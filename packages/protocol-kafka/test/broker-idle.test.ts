import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiVersionsResponse } from '../src/codec/index.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;

beforeAll(async () => {
  server = await startServer({ kafka: ['connections_max_idle_ms = 1000'] });
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

describe('idle connections (connections_max_idle_ms)', () => {
  it('closes a connection that stays silent and keeps one that sends requests', async () => {
    const silent = createConnection(server.port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => silent.on('close', () => resolve()));
    silent.on('error', () => {});
    const busy = await RawClient.open(server.port);
    try {
      // The busy client speaks every 200 ms, for longer than the idle time, while the other says nothing.
      for (let i = 0; i < 10; i++) {
        const answer = await busy.request<ApiVersionsResponse>(18, 3, {
          clientSoftwareName: 'idle-test',
          clientSoftwareVersion: '1',
        });
        expect(answer.errorCode).toBe(0);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await closed;
      expect(silent.destroyed).toBe(true);
      await server.waitForLog((line) => line.msg === 'idle connection closed');
      const last = await busy.request<ApiVersionsResponse>(18, 3, {
        clientSoftwareName: 'idle-test',
        clientSoftwareVersion: '1',
      });
      expect(last.errorCode).toBe(0);
    } finally {
      busy.close();
      silent.destroy();
    }
  }, 30_000);
});
