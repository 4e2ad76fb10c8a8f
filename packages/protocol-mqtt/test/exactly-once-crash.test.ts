import type { MetaStore, StorageEngine, StoredBatch } from '@robustmq/core';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProtocolVersion } from '../src/codec/index.js';
import { sessionKey } from '../src/session-log.js';
import { memoryMeta, startInProcess } from './helpers/in-process.js';
import { connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';

/**
 * QoS 2 across a broker crash at each point between the writes of one exactly-once message: the
 * publisher's session log (its packet id, the message), the subscribers' queues, the mark that it
 * was routed, the release. The crash is played in process: the broker's view of the storage and
 * the meta store dies at once, and the write held at the chosen point never lands; a second
 * broker then starts on what did land, as after `kill -9`.
 */

const shardOf = (clientId: string) => `mqtt-sessions/${sessionKey(clientId)}`;
const TOPIC = 'eo/t';

/** Whether an append to `shard` of `entries` (session log entries as JSON) is held till the crash. */
type Hold = (shard: string, entries: string[]) => boolean;

/** Holds the first append to `clientId`'s session log with an entry of type `t`. */
const holdEntry =
  (clientId: string, t: string): Hold =>
  (shard, entries) =>
    shard === shardOf(clientId) && entries.some((e) => e.includes(`"t":"${t}"`));

/** A broker's view of storage and meta that a crash ends, holding the writes `hold` picks. */
function crashableViews(storage: StorageEngine, meta: MetaStore, hold: Hold) {
  let dead = false;
  const held: Array<(error: Error) => void> = [];
  let heldOnce: () => void = () => {};
  const reachedHold = new Promise<void>((resolve) => (heldOnce = resolve));
  const gone = () => new RobustMQError(ErrorCode.Unavailable, 'the broker crashed');
  const view = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(object, name, receiver) {
        const value = Reflect.get(object, name, receiver) as unknown;
        if (typeof value !== 'function') return value;
        const call = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]): unknown => {
          if (name === 'watch') return dead ? { close() {} } : call.apply(object, args);
          if (dead) return Promise.reject(gone());
          if (object === storage && name === 'append') {
            const [shard, batches] = args as [string, StoredBatch[]];
            const entries = batches.map((b) => Buffer.from(b.data).toString('utf8'));
            if (hold(shard, entries)) {
              heldOnce();
              return new Promise((_resolve, reject) => held.push(reject));
            }
          }
          return call.apply(object, args);
        };
      },
    });
  return {
    storage: view(storage),
    meta: view(meta),
    reachedHold,
    crash(): void {
      dead = true;
      for (const reject of held.splice(0)) reject(gone());
    },
  };
}

/** The session log entries that landed in `clientId`'s shard. */
async function logOf(storage: StorageEngine, clientId: string): Promise<Array<Record<string, unknown>>> {
  const shard = shardOf(clientId);
  const info = await storage.shardInfo(shard).catch(() => null);
  if (info === null) return [];
  const { batches } = await storage.read(shard, info.logStartOffset, { maxBytes: 1 << 24 });
  return batches.map((b) => JSON.parse(Buffer.from(b.data).toString('utf8')) as Record<string, unknown>);
}

const persistentConnect = (version: ProtocolVersion) =>
  version === 5 ? { clean: false, properties: { sessionExpiryInterval: 600 } } : { clean: false };

describe.each([{ version: 4 as const }, { version: 5 as const }])(
  'QoS 2 from publisher version $version across a broker crash',
  ({ version }) => {
    const brokers: Array<Awaited<ReturnType<typeof startInProcess>>> = [];
    let clients: MqttClient[] = [];
    const raws: RawClient[] = [];

    afterEach(async () => {
      await endAll(clients);
      clients = [];
      for (const raw of raws.splice(0)) raw.close();
      for (const broker of brokers.splice(0)) await broker.stop();
    });

    async function subscribed(port: number, clientId: string, online: boolean) {
      const sub = await connectWithInbox(port, {
        clientId,
        protocolVersion: 5,
        clean: false,
        properties: { sessionExpiryInterval: 600 },
      });
      clients.push(sub.client);
      await sub.client.subscribeAsync(TOPIC, { qos: 2 });
      if (!online) await sub.client.endAsync();
      return sub;
    }

    async function publisher(port: number, clientId: string): Promise<RawClient> {
      const raw = await RawClient.connected(port, version, clientId, persistentConnect(version));
      raws.push(raw);
      return raw;
    }

    /**
     * Runs one crash: a subscriber (offline unless `online`) and a publisher of QoS 2 message 7
     * on broker 1, which crashes once the write `hold` picks is reached; then broker 2 on what
     * landed. Returns broker 2's port and the publisher reconnected there.
     */
    async function crashDuring(hold: Hold, options: { online?: boolean; release?: boolean } = {}) {
      const storage = new MemoryStorageEngine();
      const meta = memoryMeta();
      const views = crashableViews(storage, meta, hold);
      const first = await startInProcess({}, { storage: views.storage, meta: views.meta });
      brokers.push(first);
      const sub = await subscribed(first.port, `sub-${version}`, options.online ?? false);
      const pub = await publisher(first.port, `pub-${version}`);
      pub.send({
        cmd: 'publish',
        topic: TOPIC,
        payload: Buffer.from('x'),
        qos: 2,
        messageId: 7,
        dup: false,
        retain: false,
      });
      if (options.release) {
        const pubrec = await pub.next();
        expect(pubrec).toMatchObject({ cmd: 'pubrec', messageId: 7 });
        pub.send({ cmd: 'pubrel', messageId: 7 });
      }
      await views.reachedHold;
      // What else is under way lands meanwhile; the held write never does.
      await new Promise((r) => setTimeout(r, 200));
      const answered = [];
      while (true) {
        const packet = await pub.next(1).catch(() => null);
        if (packet === null) break;
        answered.push(packet.cmd);
      }
      views.crash();
      pub.close();
      await sub.client.endAsync(true);
      const second = await startInProcess({}, { storage, meta });
      brokers.push(second);
      return { port: second.port, storage, answered, pub: await publisher(second.port, `pub-${version}`) };
    }

    /** The publisher sends message 7 again (DUP) and completes QoS 2 for it. */
    async function resendAndComplete(pub: RawClient): Promise<void> {
      pub.send({
        cmd: 'publish',
        topic: TOPIC,
        payload: Buffer.from('x'),
        qos: 2,
        messageId: 7,
        dup: true,
        retain: false,
      });
      expect(await pub.next()).toMatchObject({ cmd: 'pubrec', messageId: 7 });
      pub.send({ cmd: 'pubrel', messageId: 7 });
      expect(await pub.next()).toMatchObject({ cmd: 'pubcomp', messageId: 7 });
    }

    async function received(port: number): Promise<string[]> {
      const sub = await connectWithInbox(port, {
        clientId: `sub-${version}`,
        protocolVersion: 5,
        clean: false,
        properties: { sessionExpiryInterval: 600 },
      });
      clients.push(sub.client);
      expect(sub.connack.sessionPresent).toBe(true);
      return (await sub.inbox.settle(500)).map((m) => m.payload);
    }

    it('is delivered once when the broker stopped before the subscriber’s queue held it', async () => {
      const run = await crashDuring(holdEntry(`sub-${version}`, 'm'));
      // The publisher's log holds the id, with the message to route again.
      expect(run.answered).toEqual([]);
      expect((await logOf(run.storage, `pub-${version}`)).some((e) => e.t === 'i')).toBe(true);
      await resendAndComplete(run.pub);
      expect(await received(run.port)).toEqual(['x']);
    });

    it('is delivered once when the broker stopped before the publisher’s log held its id', async () => {
      const run = await crashDuring(holdEntry(`pub-${version}`, 'i'));
      expect(run.answered).toEqual([]);
      await resendAndComplete(run.pub);
      expect(await received(run.port)).toEqual(['x']);
    });

    it('is delivered once when the broker stopped before marking it routed', async () => {
      const run = await crashDuring(holdEntry(`pub-${version}`, 'd'));
      const subLog = await logOf(run.storage, `sub-${version}`);
      expect(subLog.filter((e) => e.t === 'm')).toHaveLength(1);
      await resendAndComplete(run.pub);
      expect(await received(run.port)).toEqual(['x']);
    });

    it('is delivered once to a subscriber that had it and acknowledged it before the crash', async () => {
      const run = await crashDuring(holdEntry(`pub-${version}`, 'd'), { online: true });
      // The subscriber completed QoS 2 for it: its log was cut but for what tells the message.
      const subLog = await logOf(run.storage, `sub-${version}`);
      expect(subLog.filter((e) => e.t === 'a')).toHaveLength(1);
      await resendAndComplete(run.pub);
      expect(await received(run.port)).toEqual([]);
    });

    it('answers PUBCOMP only once the release is stored, so the id can be used again', async () => {
      const run = await crashDuring(holdEntry(`pub-${version}`, 'I'), { release: true });
      // Without PUBCOMP the client still holds id 7: it sends PUBREL again, then a new message.
      expect(run.answered).toEqual([]);
      run.pub.send({ cmd: 'pubrel', messageId: 7 });
      expect(await run.pub.next()).toMatchObject({ cmd: 'pubcomp', messageId: 7 });
      run.pub.send({
        cmd: 'publish',
        topic: TOPIC,
        payload: Buffer.from('y'),
        qos: 2,
        messageId: 7,
        dup: false,
        retain: false,
      });
      expect(await run.pub.next()).toMatchObject({ cmd: 'pubrec', messageId: 7 });
      run.pub.send({ cmd: 'pubrel', messageId: 7 });
      expect(await run.pub.next()).toMatchObject({ cmd: 'pubcomp', messageId: 7 });
      expect(await received(run.port)).toEqual(['x', 'y']);
    });
  },
);
