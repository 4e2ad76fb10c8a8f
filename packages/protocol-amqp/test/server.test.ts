import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, Watched } from './helpers/processes.js';
import { AMQP_HEADER, OPEN, RawClient } from './helpers/raw-client.js';
import { TestClient } from './helpers/rhea-client.js';
import { startServer, type AmqpServer } from './helpers/server.js';

const PYTHON = '/usr/bin/python3';
const PROTON = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures/proton_client.py');

let server: AmqpServer;
let url: string;
const clients: TestClient[] = [];

async function rhea(options = {}): Promise<TestClient> {
  const client = await TestClient.connect(server.port, options);
  clients.push(client);
  return client;
}

function proton(...args: string[]) {
  return run(PYTHON, [PROTON, ...args], 20_000);
}

function lines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  server = await startServer({
    amqp: ['dead_letter_address = "queue://DLQ"'],
    extra: ['[admin]', 'password = "admin-pw"'],
  });
  url = `amqp://127.0.0.1:${server.port}`;
}, 30_000);

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.stop();
});

describe('rhea against the server', { timeout: 20_000 }, () => {
  it('sends and receives through a queue stored as Kafka record batches', async () => {
    const client = await rhea();
    const sender = await client.sender('queue://rhea-orders');
    for (let i = 0; i < 10; i++) {
      expect(
        (await sender.send({ body: `order-${i}`, durable: true, application_properties: { i } })).outcome,
      ).toBe('accepted');
    }
    const receiver = await client.receiver('queue://rhea-orders');
    await receiver.waitFor(10);
    expect(receiver.bodies()).toEqual(Array.from({ length: 10 }, (_, i) => `order-${i}`));
    expect(receiver.inbox[3]!.message.application_properties).toEqual({ i: 3 });
    await server.waitForMetric(/^robustmq_amqp_messages_in_total\{[^}]*\} [1-9]/);
    expect(await server.metrics()).toMatch(/robustmq_amqp_connections\{listener="tcp"[^}]*\} [1-9]/);
  });

  it('writes log lines that name their protocol once (log stores refuse a key given twice)', () => {
    const amqpLines = server.rawLogs.filter((line) => line.includes('"protocol":"amqp"'));
    expect(amqpLines.length).toBeGreaterThan(0);
    for (const line of amqpLines) expect(line.split('"protocol":').length - 1).toBe(1);
  });

  it('lists the queue in the admin API', async () => {
    const login = await fetch(`${server.httpUrl}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'admin-pw' }),
    });
    const { token } = (await login.json()) as { token: string };
    const response = await fetch(`${server.httpUrl}/api/v1/amqp/queues/rhea-orders`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: 'rhea-orders', kind: 'queue', depth: 0 });
    // The queue is a topic of the unified namespace, as Kafka clients see it.
    const topic = await fetch(`${server.httpUrl}/api/v1/topics/rhea-orders`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(topic.status).toBe(200);
    expect(await topic.json()).toMatchObject({ name: 'rhea-orders', partitions: 1 });
  });

  it('authenticates with SASL PLAIN against the node users', async () => {
    const client = await rhea({ username: 'admin', password: 'admin-pw' });
    const sender = await client.sender('queue://plain');
    expect((await sender.send({ body: 'signed' })).outcome).toBe('accepted');
    await expect(TestClient.connect(server.port, { username: 'admin', password: 'wrong' })).rejects.toThrow();
  });

  it('counts temporary queues together and leaves no series behind for one that is gone', async () => {
    const client = await rhea();
    const replies = await client.receiver({ dynamic: true }, { credit_window: 0 });
    const address = (replies.link.source as { address: string }).address;
    const sender = await client.sender(null);
    for (let i = 0; i < 3; i++) {
      expect((await sender.send({ to: address, body: `r-${i}` })).outcome).toBe('accepted');
    }
    // Gauges are set once a second: one flush while the queue is there, one after it is gone.
    await new Promise((r) => setTimeout(r, 1200));
    const open = await server.metrics();
    replies.link.close();
    await new Promise((r) => setTimeout(r, 1200));
    const gone = await server.metrics();
    expect(gone).not.toContain(address);
    expect(open).toMatch(/^robustmq_amqp_temporary_queue_depth\{[^}]*\} 3$/m);
    expect(gone).toMatch(/^robustmq_amqp_temporary_queues\{[^}]*\} 0$/m);
  });

  it('answers bad bytes with a close frame, a log line and a counter', async () => {
    const raw = await RawClient.open(server.port);
    raw.send(
      Buffer.concat([AMQP_HEADER, OPEN, Buffer.from([0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0x33, 0x45])]),
    );
    expect(await raw.closedText()).toContain('amqp:not-implemented');
    await server.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('bad input'));
    await server.waitForMetric(/robustmq_amqp_bad_input_total\{reason="unknown_performative"[^}]*\} 1/);
  });
});

describe('Qpid Proton (Python) against the server', { timeout: 30_000 }, () => {
  it('sends and receives', async () => {
    const sent = await proton('send', url, 'queue://proton-q', '--count', '5', '--durable');
    expect(sent.stderr).toBe('');
    expect(lines(sent.stdout)).toEqual([{ sent: 5 }]);
    const got = await proton('receive', url, 'queue://proton-q', '--count', '5');
    expect(got.stderr).toBe('');
    const messages = lines(got.stdout).filter((l) => 'body' in l);
    expect(messages.map((m) => m.body)).toEqual(['msg-0', 'msg-1', 'msg-2', 'msg-3', 'msg-4']);
    expect(messages[2]!.properties).toEqual({ index: 2, source: 'proton' });
  });

  it('goes on receiving on a session whose earlier receiver closed with a message unsettled', async () => {
    expect((await proton('send', url, 'queue://detached-first')).stderr).toBe('');
    const many = await proton('send', url, 'queue://detached-then', '--count', '2100', '--prefix', 'then');
    expect(many.stderr).toBe('');
    // More deliveries than a session's buffer holds (2048) after the one never settled.
    const got = await proton(
      'detach-unsettled',
      url,
      'queue://detached-first',
      '--then',
      'queue://detached-then',
      '--count',
      '2100',
      '--timeout',
      '3',
    );
    expect(got.stderr).toBe('');
    expect(lines(got.stdout)).toEqual([{ held: 'msg-0' }, { received: 2100 }]);
  });

  it('goes on delivering to a receiver that keeps one message unsettled', async () => {
    const many = await proton('send', url, 'queue://held-one', '--count', '2101', '--prefix', 'held');
    expect(many.stderr).toBe('');
    // More deliveries than a session's buffer holds (2048) behind the one left unsettled.
    const got = await proton('hold-first', url, 'queue://held-one', '--count', '2100', '--timeout', '3');
    expect(got.stderr).toBe('');
    expect(lines(got.stdout)).toEqual([{ held: 'held-0' }, { received: 2100 }]);
    // The one held, accepted last, is settled too: nothing is left.
    await server.waitForMetric(/^robustmq_amqp_queue_depth\{queue="held-one"[^}]*\} 0$/);
  });

  it('sends and receives more messages than a session window holds, in order', async () => {
    const sent = await proton('send', url, 'queue://proton-many', '--count', '2100', '--prefix', 'many');
    expect(sent.stderr).toBe('');
    expect(lines(sent.stdout)).toEqual([{ sent: 2100 }]);
    const got = await proton('receive', url, 'queue://proton-many', '--count', '2100');
    expect(got.stderr).toBe('');
    const bodies = lines(got.stdout)
      .filter((l) => 'body' in l)
      .map((l) => l.body);
    expect(bodies).toEqual(Array.from({ length: 2100 }, (_, i) => `many-${i}`));
  });

  it('shares a queue between competing consumers', async () => {
    const a = new Watched(PYTHON, [PROTON, 'receive', url, 'queue://proton-work', '--count', '3']);
    const b = new Watched(PYTHON, [PROTON, 'receive', url, 'queue://proton-work', '--count', '3']);
    await a.waitFor('"ready"', 10_000);
    await b.waitFor('"ready"', 10_000);
    await proton('send', url, 'queue://proton-work', '--count', '6');
    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    const bodies = [...lines(ra.stdout), ...lines(rb.stdout)].filter((l) => 'body' in l).map((l) => l.body);
    expect(bodies.sort()).toEqual(['msg-0', 'msg-1', 'msg-2', 'msg-3', 'msg-4', 'msg-5']);
  });

  it('fans a topic out to every subscriber', async () => {
    const a = new Watched(PYTHON, [PROTON, 'receive', url, 'topic://proton-news', '--count', '2']);
    const b = new Watched(PYTHON, [PROTON, 'receive', url, 'topic://proton-news', '--count', '2']);
    await a.waitFor('"ready"', 10_000);
    await b.waitFor('"ready"', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    await proton('send', url, 'topic://proton-news', '--count', '2', '--prefix', 'news');
    for (const result of await Promise.all([a.exited, b.exited])) {
      expect(result.stderr).toBe('');
      expect(
        lines(result.stdout)
          .filter((l) => 'body' in l)
          .map((l) => l.body),
      ).toEqual(['news-0', 'news-1']);
    }
  });

  it('does request and reply over a dynamic address and the anonymous relay', async () => {
    const service = new Watched(PYTHON, [PROTON, 'rpc-server', url, 'queue://proton-rpc']);
    await service.waitFor('"ready"', 10_000);
    const call = await proton('rpc-client', url, 'queue://proton-rpc', '--prefix', 'ping');
    expect(call.stderr).toBe('');
    const [reply] = lines(call.stdout);
    expect(reply).toMatchObject({ reply: 'PING', correlation_id: 'corr-1' });
    expect((await service.exited).code).toBe(0);
  });

  it('releases, rejects to the dead-letter address, and modifies', async () => {
    for (const outcome of ['release', 'modify', 'reject']) {
      const address = `queue://proton-${outcome}`;
      await proton('send', url, address, '--prefix', outcome);
      const result = await proton('outcome', url, address, '--outcome', outcome);
      expect(result.stderr).toBe('');
      const expected =
        outcome === 'reject'
          ? [{ first: 'reject-0' }]
          : [{ first: `${outcome}-0` }, { again: `${outcome}-0`, delivery_count: 0 }];
      expect(lines(result.stdout)).toEqual(expected);
    }
    const dead = await proton('receive', url, 'queue://DLQ', '--count', '1');
    expect(lines(dead.stdout).find((l) => 'body' in l)?.body).toBe('reject-0');
  });

  it('authenticates with SASL PLAIN', async () => {
    const ok = await proton('send', url, 'queue://proton-plain', '--user', 'admin', '--password', 'admin-pw');
    expect(ok.stderr).toBe('');
    const refused = await proton(
      'send',
      url,
      'queue://proton-plain',
      '--user',
      'admin',
      '--password',
      'nope',
    );
    expect(refused.code).not.toBe(0);
  });

  it('receives what rhea sent', async () => {
    const client = await rhea();
    const sender = await client.sender('queue://mixed');
    await sender.send({ body: 'from rhea', application_properties: { origin: 'rhea' } });
    const got = await proton('receive', url, 'queue://mixed');
    expect(lines(got.stdout).find((l) => 'body' in l)).toMatchObject({
      body: 'from rhea',
      properties: { origin: 'rhea' },
    });
  });
});
