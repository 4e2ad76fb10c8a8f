import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './helpers/processes.js';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer | undefined;

afterAll(async () => {
  await server?.stop();
});

describe('durability', () => {
  it('keeps acknowledged records and topics across kill -9 and restart', async () => {
    server = await startServer();
    const kafka = new Kafka({
      brokers: [`127.0.0.1:${server.port}`],
      logLevel: logLevel.NOTHING,
      clientId: 'durable',
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'durable', numPartitions: 2 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    for (let round = 0; round < 10; round++) {
      await producer.send({
        topic: 'durable',
        acks: -1,
        messages: Array.from({ length: 10 }, (_, i) => ({
          key: `r${round}`,
          value: `m${round * 10 + i}`,
          partition: i % 2,
        })),
      });
    }
    await producer.disconnect();

    const dir = server.dir;
    await server.kill();
    server = await startServer({ dir });
    const consume = async (partition: number) =>
      (
        await run('/usr/bin/kcat', [
          '-b',
          `127.0.0.1:${server!.port}`,
          '-t',
          'durable',
          '-p',
          String(partition),
          '-C',
          '-o',
          'beginning',
          '-e',
          '-f',
          '%s\\n',
        ])
      ).stdout
        .trim()
        .split('\n');
    const values = [...(await consume(0)), ...(await consume(1))];
    expect(values).toHaveLength(100);
    expect(new Set(values)).toEqual(new Set(Array.from({ length: 100 }, (_, i) => `m${i}`)));
  }, 90_000);
});
