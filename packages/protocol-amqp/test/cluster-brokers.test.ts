import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { rendezvousOwner } from '@robustmq/core';
import type { EventContext } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/processes.js';
import { startServer, type AmqpServer } from './helpers/server.js';
import { TestClient, type TestReceiver, type TestSender } from './helpers/rhea-client.js';

// Two brokers on one journal node, started as real processes from the example a user starts
// them from, driven by real AMQP clients connected to either broker. A queue is served by one
// owner broker (consumers on the other are relayed to it), temporary addresses are reachable
// from both brokers, topics fan out across brokers, and a killed owner's queues move to the
// broker that is left without losing an accepted message.

const SERVER_DIR = dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json'));
const EXAMPLES = join(SERVER_DIR, 'examples', 'shared-journal');
const PYTHON = '/usr/bin/python3';
const BROKERS = [2, 3];
const SESSION_TIMEOUT_MS = 1500;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const ADMIN_PASSWORD = 'cluster-admin-pw';

function commonFlags(rpcPort: number): string[] {
  return [
    '--data-dir',
    'data',
    '--http-port',
    '0',
    '--set',
    `cluster.meta_nodes=["1@127.0.0.1:${rpcPort}"]`,
    '--set',
    'cluster.tick_ms=20',
    '--set',
    'cluster.broker_heartbeat_interval_ms=300',
    '--set',
    `cluster.broker_session_timeout_ms=${SESSION_TIMEOUT_MS}`,
    '--set',
    'log.format="json"',
    '--set',
    `admin.password="${ADMIN_PASSWORD}"`,
  ];
}

/** A node of the cluster as a process; `port` (AMQP) is unset on the journal node, which runs no protocols. */
type ClusterNode = AmqpServer;

function startNode(file: string, flags: string[], dir?: string): Promise<ClusterNode> {
  return startServer({ config: { file, flags }, ...(dir === undefined ? {} : { dir }) });
}

function startJournal(rpcPort: number): Promise<ClusterNode> {
  return startNode(join(EXAMPLES, 'journal.toml'), [...commonFlags(rpcPort), '--set', `rpc.port=${rpcPort}`]);
}

function startBroker(nodeId: number, rpcPort: number, dir?: string): Promise<ClusterNode> {
  return startNode(
    join(EXAMPLES, `broker-${nodeId}.toml`),
    [
      ...commonFlags(rpcPort),
      '--mqtt-port',
      '0',
      '--kafka-port',
      '0',
      '--set',
      'amqp.port=0',
      '--set',
      'rpc.port=0',
      '--set',
      `storage.address="127.0.0.1:${rpcPort}"`,
    ],
    dir,
  );
}

/** Waits until `broker` has logged, after its `since`-th log line, that the live brokers are `ids`. */
async function waitForBrokers(broker: ClusterNode, ids: number[], since = 0): Promise<void> {
  const wanted = JSON.stringify(ids);
  await waitUntil(
    () =>
      broker.logs
        .slice(since)
        .some(
          (line) => line.msg === 'brokers of the cluster changed' && JSON.stringify(line.brokers) === wanted,
        ),
    10_000,
    `the live brokers to become ${wanted}`,
  );
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The first of `<stem>-0`, `<stem>-1`, ... whose queue `owner` serves, so tests know who relays. */
function queueOwnedBy(owner: number, stem: string): string {
  for (let i = 0; i < 1000; i++) {
    const name = `${stem}-${i}`;
    if (rendezvousOwner(name, BROKERS) === owner) return name;
  }
  throw new Error(`no name ${stem}-N is owned by broker ${owner}`);
}

/** Sends each body as a durable message, one after the other, and checks that each is accepted. */
async function sendAll(sender: TestSender, bodies: string[]): Promise<void> {
  for (const body of bodies) {
    const { outcome } = await sender.send({ body, durable: true });
    expect(outcome, `outcome of ${body}`).toBe('accepted');
  }
}

/** Bodies that occur more than once. */
function repeated(bodies: unknown[]): unknown[] {
  const seen = new Set<unknown>();
  return bodies.filter((b) => (seen.has(b) ? true : (seen.add(b), false)));
}

function names(stem: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${stem}-${i}`);
}

describe('AMQP across stateless brokers on one journal node', () => {
  let journal: ClusterNode;
  let broker2: ClusterNode;
  let broker3: ClusterNode;
  let rpcPort: number;
  const clients: TestClient[] = [];

  async function connect(broker: ClusterNode): Promise<TestClient> {
    const client = await TestClient.connect(broker.port);
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    rpcPort = await freePort();
    journal = await startJournal(rpcPort);
    [broker2, broker3] = await Promise.all([startBroker(2, rpcPort), startBroker(3, rpcPort)]);
    await Promise.all([waitForBrokers(broker2, BROKERS), waitForBrokers(broker3, BROKERS)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all([broker2?.stop(), broker3?.stop()]);
    await journal?.stop();
  }, 20_000);

  it('gives each message of a queue to one consumer, whichever broker each is on', async () => {
    const name = queueOwnedBy(3, 'competing');
    const queue = `queue://${name}`;
    const on2 = await (await connect(broker2)).receiver(queue, { credit_window: 10, autoaccept: true });
    const on3 = await (await connect(broker3)).receiver(queue, { credit_window: 10, autoaccept: true });
    const [sender2, sender3] = await Promise.all([
      (await connect(broker2)).sender(queue),
      (await connect(broker3)).sender(queue),
    ]);
    const from2 = names('via-2', 50);
    const from3 = names('via-3', 50);
    await Promise.all([sendAll(sender2, from2), sendAll(sender3, from3)]);

    await waitUntil(() => on2.inbox.length + on3.inbox.length >= 100, 15_000, '100 deliveries');
    // Room for a duplicate to show up after the hundredth delivery.
    await sleep(500);
    const all = [...on2.bodies(), ...on3.bodies()];
    expect(
      { deliveries: all.length, givenTwice: repeated(all).length },
      'each message to one of the two consumers',
    ).toEqual({ deliveries: 100, givenTwice: 0 });
    expect([...all].sort()).toEqual([...from2, ...from3].sort());
    expect(on2.inbox.length, 'consumer on broker 2 (relayed)').toBeGreaterThan(0);
    expect(on3.inbox.length, 'consumer on broker 3 (owner)').toBeGreaterThan(0);

    // The admin API of either broker shows the queue as its owner has it, with both consumers.
    const login = await fetch(`${broker2.httpUrl}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    const { token } = (await login.json()) as { token: string };
    const shown = await fetch(`${broker2.httpUrl}/api/v1/amqp/queues/${name}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await shown.json()).toMatchObject({ id: name, broker: 3, consumers: 2, depth: 0 });
  }, 30_000);

  it('hands released and detached messages to a consumer on the other broker, and keeps acceptances', async () => {
    const name = queueOwnedBy(3, 'handover');
    const queue = `queue://${name}`;
    const sender = await (await connect(broker2)).sender(queue);
    await sendAll(sender, ['held-1', 'held-2']);

    const holder = await (await connect(broker2)).receiver(queue, { credit_window: 0, autoaccept: false });
    holder.link.add_credit(2);
    expect((await holder.waitFor(2)).map((r) => r.message.body as unknown)).toEqual(['held-1', 'held-2']);

    // While broker 2's consumer holds both, broker 3's consumer must get neither.
    const taker = await (await connect(broker3)).receiver(queue, { credit_window: 0, autoaccept: true });
    taker.link.add_credit(10);
    await sleep(300);
    expect(taker.bodies(), 'messages still held on broker 2').toEqual([]);

    holder.inbox[0]!.delivery.release();
    await taker.waitFor(1);
    expect(taker.bodies()).toEqual(['held-1']);
    // Detaching with held-2 unsettled gives it back to the queue as well.
    holder.link.close();
    await taker.waitFor(2);
    expect(taker.bodies()).toEqual(['held-1', 'held-2']);
    taker.link.close();

    // Accepted through broker 2 (relayed) ...
    const acceptor = await (await connect(broker2)).receiver(queue, { credit_window: 10, autoaccept: true });
    await sendAll(sender, names('done', 5));
    await acceptor.waitFor(5);
    expect(acceptor.bodies(), 'held-1 and held-2 were accepted on broker 3').toEqual(names('done', 5));
    acceptor.link.close();

    // ... and not given again through broker 3: the marker sent last comes first.
    const late = await (await connect(broker3)).receiver(queue, { credit_window: 10, autoaccept: true });
    await sendAll(sender, ['marker']);
    await waitUntil(() => late.bodies().includes('marker'), 5000, 'the marker');
    await sleep(300);
    expect(late.bodies()).toEqual(['marker']);
  }, 30_000);

  it('replies from broker 3 to a Qpid Proton requester on broker 2 through its dynamic address', async () => {
    const name = queueOwnedBy(3, 'requests');
    const requests = `queue://${name}`;
    const responder = await connect(broker3);
    const relay = await responder.sender(null);
    const incoming: TestReceiver = await responder.receiver(requests, { autoaccept: false });
    const replyOutcomes: string[] = [];
    incoming.link.on('message', (context: EventContext) => {
      const request = context.message!;
      void relay
        .send({
          to: request.reply_to,
          body: String(request.body).toUpperCase(),
          correlation_id: request.correlation_id,
        })
        .then(
          ({ outcome, state }) =>
            replyOutcomes.push(outcome === 'accepted' ? outcome : `${outcome} ${JSON.stringify(state)}`),
          (error: Error) => replyOutcomes.push(error.message),
        )
        .finally(() => context.delivery!.accept());
    });

    // Proton's blocking API: a dynamic receiver's address is the reply-to of each request.
    const script = [
      'import json, sys',
      'from proton import Message',
      'from proton.utils import BlockingConnection',
      'url, address, count = sys.argv[1], sys.argv[2], int(sys.argv[3])',
      'conn = BlockingConnection(url, timeout=10)',
      'replies = conn.create_receiver(None, dynamic=True, credit=count)',
      'reply_to = replies.link.remote_source.address',
      'sender = conn.create_sender(address)',
      'for i in range(count):',
      '    sender.send(Message(body=f"ping-{i}", reply_to=reply_to, correlation_id=f"corr-{i}"))',
      'for _ in range(count):',
      '    reply = replies.receive(timeout=8)',
      '    replies.accept()',
      '    print(json.dumps({"body": reply.body, "correlation_id": reply.correlation_id,',
      '                      "reply_to": reply_to}), flush=True)',
      'conn.close()',
    ].join('\n');
    const result = await run(
      PYTHON,
      ['-c', script, `amqp://127.0.0.1:${broker2.port}`, requests, '3'],
      20_000,
    );
    expect(
      result.stderr,
      `requester failed; the responder's replies came back ${replyOutcomes.join(', ')}`,
    ).toBe('');
    const replies = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { body: string; correlation_id: string; reply_to: string });
    expect(replies.map((r) => [r.body, r.correlation_id]).sort()).toEqual([
      ['PING-0', 'corr-0'],
      ['PING-1', 'corr-1'],
      ['PING-2', 'corr-2'],
    ]);
    expect(replies[0]!.reply_to).toMatch(/^amqp-tmp-/);
    expect(incoming.bodies()).toEqual(['ping-0', 'ping-1', 'ping-2']);
    expect(replyOutcomes).toEqual(['accepted', 'accepted', 'accepted']);
  }, 30_000);

  it('gives every subscriber of a topic, on either broker, each message published on either', async () => {
    const topic = 'topic://cluster-news';
    // Both brokers meet the new address at once: one creates it while the other finds it half-made.
    const subscribers = await Promise.all([
      connect(broker2).then((client) => client.receiver(topic)),
      connect(broker3).then((client) => client.receiver(topic)),
    ]);
    const [publisher2, publisher3] = await Promise.all([
      (await connect(broker2)).sender(topic),
      (await connect(broker3)).sender(topic),
    ]);
    const sent = [...names('news-2', 10), ...names('news-3', 10)];
    await Promise.all([sendAll(publisher2, names('news-2', 10)), sendAll(publisher3, names('news-3', 10))]);
    for (const subscriber of subscribers) await subscriber.waitFor(20, 10_000);
    await sleep(300);
    for (const subscriber of subscribers) {
      expect(repeated(subscriber.bodies())).toEqual([]);
      expect([...subscriber.bodies()].sort()).toEqual([...sent].sort());
    }
  }, 30_000);

  /**
   * A consumer on the owner holds `held` unsettled (and has accepted `done`) when `end` ends the
   * owner; it reconnects to broker 2, which takes the queue over. What the redelivered messages'
   * headers say (AMQP 1.0 section 3.2.1), in the order they came.
   */
  async function redeliveredAfter(
    stem: string,
    end: () => Promise<unknown>,
  ): Promise<Array<{ body: unknown; deliveryCount: number; firstAcquirer: unknown }>> {
    const name = queueOwnedBy(3, stem);
    const queue = `queue://${name}`;
    const sender = await (await connect(broker2)).sender(queue);
    for (const body of ['done', 'held-1', 'held-2']) {
      const { outcome } = await sender.send({ body, durable: true, first_acquirer: true });
      expect(outcome, `outcome of ${body}`).toBe('accepted');
    }
    const owner = await (await connect(broker3)).receiver(queue, { credit_window: 0, autoaccept: false });
    owner.link.add_credit(3);
    const first = await owner.waitFor(3);
    expect(
      first.map((r) => [r.message.body as unknown, r.message.delivery_count ?? 0, r.message.first_acquirer]),
      'first deliveries',
    ).toEqual([
      ['done', 0, true],
      ['held-1', 0, true],
      ['held-2', 0, true],
    ]);
    first[0]!.delivery.accept();
    // The acceptance is stored shortly after it arrives: give it that moment.
    await sleep(500);

    await end();
    const survivor = await (await connect(broker2)).receiver(queue, { credit_window: 10, autoaccept: true });
    await survivor.waitFor(2, SESSION_TIMEOUT_MS + 6000);
    await sleep(300);
    return survivor.inbox.map(({ message }) => ({
      body: message.body as unknown,
      deliveryCount: message.delivery_count ?? 0,
      firstAcquirer: message.first_acquirer,
    }));
  }

  /** Starts broker 3 again (in `dir`, a killed one's) and waits until both brokers see each other. */
  async function restartBroker3(dir?: string): Promise<void> {
    const since = broker2.logs.length;
    broker3 = await startBroker(3, rpcPort, dir);
    await waitForBrokers(broker2, BROKERS, since);
    await waitForBrokers(broker3, BROKERS);
  }

  it("gives a stopped owner's unsettled messages again as possibly delivered before", async () => {
    const got = await redeliveredAfter('stopped-owner', () => broker3.stop());
    await restartBroker3();
    expect(got).toEqual([
      { body: 'held-1', deliveryCount: 1, firstAcquirer: false },
      { body: 'held-2', deliveryCount: 1, firstAcquirer: false },
    ]);
  }, 40_000);

  it("gives a killed owner's unsettled messages again as possibly delivered before", async () => {
    const got = await redeliveredAfter('killed-owner', () => broker3.kill());
    await restartBroker3(broker3.dir);
    expect(got).toEqual([
      { body: 'held-1', deliveryCount: 1, firstAcquirer: false },
      { body: 'held-2', deliveryCount: 1, firstAcquirer: false },
    ]);
  }, 40_000);

  it("after kill -9 of a queue's owner, the other broker serves what was not accepted, once", async () => {
    const name = queueOwnedBy(3, 'orphaned');
    const queue = `queue://${name}`;
    const local = await (await connect(broker3)).receiver(queue, { credit_window: 0, autoaccept: true });
    const sender = await (await connect(broker2)).sender(queue);
    const bodies = names('order', 20);
    await sendAll(sender, bodies);
    // The owner has five of them accepted; the other fifteen are stored and waiting.
    local.link.add_credit(5);
    expect((await local.waitFor(5)).map((r) => r.message.body as unknown)).toEqual(bodies.slice(0, 5));
    // Acceptances are stored shortly after they arrive: give them that moment before the kill.
    await sleep(500);

    await broker3.kill();
    const survivor = await (await connect(broker2)).receiver(queue, { credit_window: 20, autoaccept: true });
    // Broker 2 counts broker 3 gone after the session timeout and takes the queue over.
    await survivor.waitFor(15, SESSION_TIMEOUT_MS + 6000).catch((error: Error) => {
      throw new Error(
        `${error.message}: ${JSON.stringify(survivor.bodies())} ${JSON.stringify(survivor.closedWith)}`,
      );
    });
    await sleep(300);
    expect([...survivor.bodies()].sort(), 'the fifteen not accepted before the kill, and only those').toEqual(
      bodies.slice(5).sort(),
    );

    // Broker 3 comes back on its data and owns the queue again; the consumer on broker 2 stays
    // attached and gets new messages once, and none of the old ones again.
    const since = broker2.logs.length;
    broker3 = await startBroker(3, rpcPort, broker3.dir);
    await waitForBrokers(broker2, BROKERS, since);
    await waitForBrokers(broker3, BROKERS);
    await sendAll(sender, names('after', 5));
    await survivor.waitFor(20, 10_000);
    await sleep(500);
    expect(repeated(survivor.bodies())).toEqual([]);
    expect([...survivor.bodies()].sort()).toEqual([...bodies.slice(5), ...names('after', 5)].sort());
  }, 40_000);
});
