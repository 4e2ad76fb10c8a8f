import { ErrorCode, isRobustMQError, silentLogger, type Logger } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { describe, expect, it } from 'vitest';
import { SESSIONS_PREFIX, SessionLog, sessionKey, type SessionRecord } from '../src/session-log.js';
import { memoryMeta } from './helpers/in-process.js';

/** A logger that keeps what it is given at error level. */
function errorsKept(): { logger: Logger; errors: string[] } {
  const errors: string[] = [];
  const logger: Logger = {
    ...silentLogger,
    error: (...args: unknown[]) => void errors.push(String(args.find((a) => typeof a === 'string'))),
    child: () => logger,
  };
  return { logger, errors };
}

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
    const first = errorsKept();
    const second = errorsKept();
    const atBroker2 = new SessionLog('sensor-7', storage, meta, first.logger);
    const atBroker3 = new SessionLog('sensor-7', storage, meta, second.logger);
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
