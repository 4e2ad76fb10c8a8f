import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from './helpers/processes.js';
import { TestClient } from './helpers/rhea-client.js';
import { startServer, type AmqpServer } from './helpers/server.js';

const PROTON = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures/proton_client.py');

let server: AmqpServer | null = null;

afterEach(async () => {
  await server?.stop();
  server = null;
});

async function restart(killed: AmqpServer): Promise<AmqpServer> {
  await killed.kill();
  return startServer({ dir: killed.dir });
}

/** The segment file under `dir` holding `text`, and where. */
function findStored(dir: string, text: string): { file: string; at: number } {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.log')) continue;
    const file = join(entry.parentPath, entry.name);
    const at = readFileSync(file).indexOf(text);
    if (at >= 0) return { file, at };
  }
  throw new Error(`${text} is stored nowhere under ${dir}`);
}

describe('durability across kill -9', { timeout: 60_000 }, () => {
  it('keeps every accepted message, and redelivers only the unsettled ones', async () => {
    server = await startServer();
    const producer = await TestClient.connect(server.port);
    const sender = await producer.sender('queue://kill-9');
    for (let i = 0; i < 50; i++) {
      expect((await sender.send({ body: `m-${i}`, durable: true })).outcome).toBe('accepted');
    }
    const consumer = await producer.receiver('queue://kill-9', { credit_window: 0 });
    consumer.link.add_credit(20);
    await consumer.waitFor(20);
    // Acks are persisted shortly after they arrive; give them that moment before the kill.
    await new Promise((r) => setTimeout(r, 500));

    const dir = server.dir;
    server = await restart(server);
    expect(server.dir).toBe(dir);
    const url = `amqp://127.0.0.1:${server.port}`;
    const got = await run(
      '/usr/bin/python3',
      [PROTON, 'receive', url, 'queue://kill-9', '--count', '30'],
      20_000,
    );
    expect(got.stderr).toBe('');
    const bodies = got.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { body?: string })
      .filter((l) => l.body !== undefined)
      .map((l) => l.body);
    expect(bodies).toEqual(Array.from({ length: 30 }, (_, i) => `m-${i + 20}`));
  });

  it('loses no accepted message when killed mid-traffic', async () => {
    server = await startServer();
    const producer = await TestClient.connect(server.port);
    const sender = await producer.sender('queue://mid-traffic');
    const accepted = new Set<string>();
    let sent = 0;
    const sending = (async () => {
      for (;;) {
        const body = `t-${sent++}`;
        try {
          const result = await sender.send({ body, durable: true }, 2000);
          if (result.outcome === 'accepted') accepted.add(body);
        } catch {
          return;
        }
      }
    })();
    while (accepted.size < 100) await new Promise((r) => setTimeout(r, 5));
    const dir = server.dir;
    await server.kill();
    await sending;
    server = await startServer({ dir });
    const consumer = await TestClient.connect(server.port);
    const receiver = await consumer.receiver('queue://mid-traffic');
    await receiver.waitFor(accepted.size, 10_000);
    const received = new Set(receiver.bodies() as string[]);
    for (const body of accepted) expect(received.has(body)).toBe(true);
    await consumer.close();
  });
});

describe('a corrupt batch on disk', { timeout: 60_000 }, () => {
  it('is skipped with a log line and a count, and the messages after it are delivered', async () => {
    server = await startServer();
    const producer = await TestClient.connect(server.port);
    const sender = await producer.sender('queue://bit-rot');
    // One at a time: each message is a record batch of its own.
    for (let i = 0; i < 10; i++) {
      expect((await sender.send({ body: `rot-${i}`, durable: true })).outcome).toBe('accepted');
    }
    await producer.close();
    // Stopped cleanly: the journal then trusts the segment at start, and the damage is met on read
    // (after a crash it would cut the segment at the damage instead).
    const exited = new Promise((resolve) => server!.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    await exited;
    const { file, at } = findStored(server.dir, 'rot-5');
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(at + 4) ^ 0xff, at + 4);
    writeFileSync(file, bytes);

    server = await startServer({ dir: server.dir });
    const consumer = await TestClient.connect(server.port);
    const receiver = await consumer.receiver('queue://bit-rot');
    await receiver.waitFor(9, 10_000);
    expect(receiver.bodies()).toEqual([
      'rot-0',
      'rot-1',
      'rot-2',
      'rot-3',
      'rot-4',
      'rot-6',
      'rot-7',
      'rot-8',
      'rot-9',
    ]);
    await server.waitForLog((l) => l.msg === 'corrupt messages skipped' && l.queue === 'bit-rot');
    await server.waitForMetric(/^robustmq_amqp_messages_dropped_total\{reason="corrupt"[^}]*\} 1$/);
    await consumer.close();
  });
});
