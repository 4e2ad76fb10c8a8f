import { ErrorCode, isRobustMQError, silentLogger, type Logger } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { describe, expect, it } from 'vitest';
import {
  SESSIONS_PREFIX,
  SessionLog,
  sessionKey,
  type LogEntry,
  type SessionRecord,
} from '../src/session-log.js';
import { memoryMeta } from './helpers/in-process.js';

/** A logger that keeps what it is given at error and warn level. */
function linesKept(): { logger: Logger; errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const message = (args: unknown[]) => String(args.find((a) => typeof a === 'string'));
  const logger: Logger = {
    ...silentLogger,
    error: (...args: unknown[]) => void errors.push(message(args)),
    warn: (...args: unknown[]) => void warnings.push(message(args)),
    child: () => logger,
  };
  return { logger, errors, warnings };
}

const SHARD = 'mqtt-sessions/' + sessionKey('sensor-7');

const entry = (s: number) =>
  ({
    t: 'm',
    s,
    m: { topic: 't', qos: 1, retain: false, payload: '' },
    q: 1,
    r: false,
    ids: null,
  }) as unknown as LogEntry;

const record = (node: number): SessionRecord => ({
  clientId: 'sensor-7',
  expiryInterval: 3600,
  subscriptions: [],
  node,
  disconnectedAt: null,
});

describe('a session record claimed by two brokers at once', () => {
  it('goes to one; the other is told CONFLICT, which is not logged as a store failure', async () => {
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const first = linesKept();
    const second = linesKept();
    const atBroker2 = new SessionLog('sensor-7', storage, meta, first.logger, 2);
    const atBroker3 = new SessionLog('sensor-7', storage, meta, second.logger, 3);
    await atBroker2.saveRecord(record(1));
    const revision = (await meta.get(SESSIONS_PREFIX + sessionKey('sensor-7')))!.modRevision;

    const outcomes = await Promise.allSettled([
      atBroker2.claimRecord(record(2), revision),
      atBroker3.claimRecord(record(3), revision),
    ]);
    expect(outcomes[0].status).toBe('fulfilled');
    expect(outcomes[1].status).toBe('rejected');
    expect(isRobustMQError((outcomes[1] as PromiseRejectedResult).reason, ErrorCode.Conflict)).toBe(true);
    expect([...first.errors, ...second.errors]).toEqual([]);

    // The loser's later writes still run.
    await atBroker3.saveRecord(record(3));
    const stored = (await meta.get(SESSIONS_PREFIX + sessionKey('sensor-7')))!;
    expect((JSON.parse(Buffer.from(stored.value).toString()) as SessionRecord).node).toBe(3);
    await storage.close();
  });
});

describe('a session log deleted behind the broker writing it', () => {
  /** Broker 2 serving the session, one entry in its log. */
  async function servedByBroker2() {
    const meta = memoryMeta();
    const storage = new MemoryStorageEngine();
    const kept = linesKept();
    const log = new SessionLog('sensor-7', storage, meta, kept.logger, 2);
    await log.saveRecord(record(2));
    await log.append(entry(1));
    const numbers = async () => (await log.read()).map((e) => (e as { s: number }).s);
    return { meta, storage, kept, log, numbers };
  }

  const nameBroker3 = (meta: ReturnType<typeof memoryMeta>) =>
    meta.put(SESSIONS_PREFIX + sessionKey('sensor-7'), Buffer.from(JSON.stringify(record(3))));

  it('is made again for the next entry while the record still names this broker', async () => {
    const { storage, kept, log, numbers } = await servedByBroker2();
    // As another broker's deletion of its own copy of the session would.
    await storage.deleteShard(SHARD);
    await log.append(entry(2));
    expect(await numbers()).toEqual([2]);
    expect(kept.errors).toEqual([]);
    await storage.close();
  });

  for (const [what, change] of [
    ['the record names another broker', nameBroker3],
    [
      'the record is gone (the session ended)',
      (m: ReturnType<typeof memoryMeta>) => m.delete(SESSIONS_PREFIX + sessionKey('sensor-7')),
    ],
  ] as const) {
    it(`takes entries without storing them, and fails no write, when ${what}`, async () => {
      const { meta, storage, kept, log } = await servedByBroker2();
      await change(meta);
      await storage.deleteShard(SHARD);
      await log.append(entry(2));
      await log.append(entry(3));
      log.truncate();
      await log.settled();
      await expect(storage.shardInfo(SHARD)).rejects.toMatchObject({ code: ErrorCode.NotFound });
      expect(kept.errors).toEqual([]);
      expect(kept.warnings).toEqual([
        'session log deleted by the broker that serves the session now; entries not stored here',
      ]);
      await storage.close();
    });
  }

  it('writes the log again once the session is served here again', async () => {
    const { meta, storage, kept, log, numbers } = await servedByBroker2();
    await nameBroker3(meta);
    await storage.deleteShard(SHARD);
    await log.append(entry(2));
    // Taken back by this broker.
    await log.saveRecord(record(2));
    await log.append(entry(3));
    expect(await numbers()).toEqual([3]);
    expect(kept.errors).toEqual([]);
    await storage.close();
  });
});
