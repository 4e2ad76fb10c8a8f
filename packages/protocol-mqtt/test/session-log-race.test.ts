import {
  ErrorCode,
  RobustMQError,
  type MetaStore,
  type ReadOptions,
  type ReadResult,
  type ShardInfo,
} from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { sessionKey } from '../src/session-log.js';
import { memoryMeta, startInProcess } from './helpers/in-process.js';
import { connectClient, connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';

const shardOf = (clientId: string) => `mqtt-sessions/${sessionKey(clientId)}`;

/**
 * Storage shared by two broker runs, as brokers of a cluster share the journal. It can play the
 * other broker: cut a session log right after the starting broker asked where the log starts, or
 * refuse to read a log at all.
 */
class RacingStorage extends MemoryStorageEngine {
  /** Shard name to the offset another broker cuts its log at, once, after shardInfo. */
  readonly cuts = new Map<string, number | 'end'>();
  readonly unreadable = new Set<string>();

  override async shardInfo(shard: string): Promise<ShardInfo> {
    const info = await super.shardInfo(shard);
    const cut = this.cuts.get(shard);
    if (cut !== undefined) {
      this.cuts.delete(shard);
      await super.deleteBefore(shard, cut === 'end' ? info.nextOffset : cut);
    }
    return info;
  }

  override async read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
    if (this.unreadable.has(shard))
      throw new RobustMQError(ErrorCode.Unavailable, `${shard} cannot be read now`);
    return super.read(shard, offset, options);
  }
}

describe('starting while another broker cuts the session logs', () => {
  let clients: MqttClient[] = [];
  const brokers: Array<Awaited<ReturnType<typeof startInProcess>>> = [];

  afterEach(async () => {
    await endAll(clients);
    clients = [];
    for (const broker of brokers.splice(0)) await broker.stop();
  });

  async function start(storage: RacingStorage, meta: MetaStore) {
    const broker = await startInProcess({}, { storage, meta });
    brokers.push(broker);
    return broker;
  }

  /** Persistent sessions for `ids`, each subscribed to r/# and away, with `count` QoS 1 messages queued. */
  async function queueMessages(storage: RacingStorage, meta: MetaStore, ids: string[], count: number) {
    const first = await start(storage, meta);
    for (const clientId of ids) {
      const c = await connectClient(first.port, { clientId, clean: false, protocolVersion: 4 });
      await c.subscribeAsync('r/#', { qos: 1 });
      await c.endAsync();
    }
    const publisher = await connectClient(first.port, { protocolVersion: 4 });
    clients.push(publisher);
    // One at a time, so each message is its own entry at its own offset of every log.
    for (let i = 1; i <= count; i++) await publisher.publishAsync('r/a', `m${i}`, { qos: 1 });
    await publisher.endAsync();
    brokers.splice(brokers.indexOf(first), 1);
    await first.stop();
  }

  async function resume(port: number, clientId: string, expected: number) {
    const { client, inbox, connack } = await connectWithInbox(port, {
      clientId,
      clean: false,
      protocolVersion: 4,
    });
    clients.push(client);
    const received = expected === 0 ? await inbox.settle() : await inbox.waitFor(expected);
    return {
      present: connack.sessionPresent,
      payloads: (await inbox.settle(100)).map((m) => m.payload),
      received,
    };
  }

  it('reads a log cut between shardInfo and read from its new start, and starts', async () => {
    const storage = new RacingStorage();
    const meta = memoryMeta();
    await queueMessages(storage, meta, ['busy', 'emptied', 'quiet'], 5);
    // The other broker delivered busy's first two messages and emptied's all, then cut their logs.
    storage.cuts.set(shardOf('busy'), 2);
    storage.cuts.set(shardOf('emptied'), 'end');
    const second = await start(storage, meta);
    expect(storage.cuts.size).toBe(0);

    const busy = await resume(second.port, 'busy', 3);
    expect(busy.present).toBe(true);
    expect(busy.payloads).toEqual(['m3', 'm4', 'm5']);
    const emptied = await resume(second.port, 'emptied', 0);
    expect(emptied.present).toBe(true);
    expect(emptied.payloads).toEqual([]);
    const quiet = await resume(second.port, 'quiet', 5);
    expect(quiet.payloads).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
  });

  it('leaves out a session whose log cannot be read and starts with the others intact', async () => {
    const storage = new RacingStorage();
    const meta = memoryMeta();
    await queueMessages(storage, meta, ['broken', 'quiet'], 3);
    storage.unreadable.add(shardOf('broken'));
    const second = await start(storage, meta);

    const quiet = await resume(second.port, 'quiet', 3);
    expect(quiet.present).toBe(true);
    expect(quiet.payloads).toEqual(['m1', 'm2', 'm3']);
    // Its log is left in storage for a later start, not deleted.
    storage.unreadable.clear();
    expect((await storage.shardInfo(shardOf('broken'))).nextOffset).toBe(3);
  });
});
