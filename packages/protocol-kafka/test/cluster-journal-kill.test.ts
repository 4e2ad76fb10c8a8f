import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/group-members.js';
import { run } from './helpers/processes.js';
import { freePort, startExampleBroker, startExampleJournal } from './helpers/example-cluster.js';
import type { KafkaServer } from './helpers/server.js';

// Idempotent producers on two stateless brokers while their journal node is killed with -9 and
// restarted, again and again, in the middle of their traffic. An append in flight when the journal
// node dies may have been stored even though the broker never heard back; the producer's retry of
// it must then be answered as a duplicate, not stored a second time.

const KILLS = 4;

const startJournal = (rpcPort: number, dir?: string) =>
  startExampleJournal(rpcPort, dir === undefined ? {} : { dir });

/** A broker that gives up on a journal call after 3 s, so that each kill is felt quickly. */
const startBroker = (nodeId: number, rpcPort: number) =>
  startExampleBroker(nodeId, rpcPort, { flags: ['--set', 'storage.request_timeout_ms=3000'] });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idempotent producers while the journal node is killed', () => {
  let journal: KafkaServer | undefined;
  const brokers: KafkaServer[] = [];

  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.stop('SIGKILL')));
    await journal?.stop('SIGKILL');
  }, 20_000);

  it('stores each acknowledged batch once, and loses none, across kill -9 of the journal node', async () => {
    const rpcPort = await freePort();
    journal = await startJournal(rpcPort);
    brokers.push(...(await Promise.all([startBroker(2, rpcPort), startBroker(3, rpcPort)])));
    const bootstrap = brokers.map((b) => `127.0.0.1:${b.port}`);
    const topic = 'payments';
    const admin = new Kafka({ brokers: bootstrap, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await waitFor('both brokers in the metadata', async () => {
      const { brokers: listed } = await admin.describeCluster();
      return listed.length === 2;
    });
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
    await admin.disconnect();

    const acknowledged: string[] = [];
    let producing = true;
    // One producer per broker, each awaiting every batch: a value counts once its send resolved.
    const produce = async (name: string, broker: string) => {
      const producer = new Kafka({
        clientId: name,
        brokers: [broker],
        logLevel: logLevel.NOTHING,
        retry: { retries: 40, initialRetryTime: 100, maxRetryTime: 1000 },
      }).producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      let next = 0;
      while (producing) {
        const values = Array.from({ length: 8 }, () => `${name}-${next++}`);
        try {
          await producer.send({
            topic,
            acks: -1,
            messages: values.map((value, i) => ({ key: `k${i}`, value })),
          });
          acknowledged.push(...values);
        } catch {
          await sleep(100);
        }
      }
      await producer.disconnect();
    };
    const producers = bootstrap.map((broker, i) => produce(`producer-${i}`, broker));

    for (let kill = 0; kill < KILLS; kill++) {
      const before = acknowledged.length;
      await waitFor('traffic before the kill', () => acknowledged.length >= before + 200, 20_000);
      await sleep(Math.random() * 500);
      const dir = journal.dir;
      await journal.kill();
      journal = await startJournal(rpcPort, dir);
    }
    const before = acknowledged.length;
    await waitFor('traffic after the last restart', () => acknowledged.length >= before + 200, 20_000);
    producing = false;
    await Promise.all(producers);

    const { stdout } = await run(
      'kcat',
      ['-C', '-b', bootstrap.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'],
      { timeoutMs: 30_000 },
    );
    const stored = stdout.split('\n').filter((line) => line !== '');
    const seen = new Map<string, number>();
    for (const value of stored) seen.set(value, (seen.get(value) ?? 0) + 1);
    expect(
      acknowledged.filter((value) => !seen.has(value)),
      'acknowledged and not stored',
    ).toEqual([]);
    expect(
      [...seen].filter(([, count]) => count > 1).map(([value]) => value),
      'stored more than once',
    ).toEqual([]);
  }, 90_000);
});
