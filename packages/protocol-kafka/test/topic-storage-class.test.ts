import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ADMIN_CONFIG, adminApi } from './helpers/admin-api.js';
import { run } from './helpers/processes.js';
import { startServer } from './helpers/server.js';

describe('topics Kafka clients create', () => {
  it("record the storage class of the node's engine", async () => {
    const server = await startServer({
      extra: ['[storage]', 'engine = "@robustmq/storage-memory"', ...ADMIN_CONFIG],
    });
    try {
      // Auto-created by a produce, and created by CreateTopics.
      await run('/usr/bin/kcat', ['-b', `127.0.0.1:${server.port}`, '-t', 'made-by-produce', '-P'], {
        input: 'x\n',
      });
      const admin = new Kafka({ brokers: [`127.0.0.1:${server.port}`], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'made-by-admin', numPartitions: 2 }] });
      await admin.disconnect();
      const api = await adminApi(server.httpUrl);
      for (const name of ['made-by-produce', 'made-by-admin']) {
        const topic = await api.call('GET', `/api/v1/topics/${name}`);
        expect(topic).toMatchObject({ status: 200, body: { name, storageClass: 'memory' } });
      }
    } finally {
      await server.stop();
    }
  }, 30_000);
});
