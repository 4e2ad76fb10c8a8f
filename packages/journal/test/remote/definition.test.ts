import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  ErrorCode,
  isRobustMQError,
  silentLogger,
  type StorageEngineDefinition,
  type StorageEngineOptions,
} from '@robustmq/core';
import journalRemote, { parseRemoteJournalConfig } from '../../src/remote/index.js';
import { batch, CountingMetrics, open, sha, tempDir } from '../helpers.js';
import { rejectionOf, startServer } from './helpers.js';

function options(config: Record<string, unknown>): StorageEngineOptions {
  return { dataDir: '/nonexistent', config, logger: silentLogger, metrics: new CountingMetrics() };
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

function expectConfigError(action: () => unknown, setting: string): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  expect((thrown as ConfigError).setting).toBe(setting);
}

describe('@robustmq/journal/remote', () => {
  it('is loadable by package name, next to the root exports', async () => {
    const subpath = '@robustmq/journal/remote';
    const root = '@robustmq/journal';
    const remote = (await import(subpath)) as { default: StorageEngineDefinition };
    expect(remote.default.name).toBe('journal-remote');
    expect(typeof remote.default.open).toBe('function');
    const main = (await import(root)) as Record<string, unknown>;
    for (const name of ['connectJournal', 'createJournalServer', 'serveJournal', 'openJournal']) {
      expect(typeof main[name], name).toBe('function');
    }
  });

  it('opens a client of the journal server at `address`', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    const storage = await journalRemote.open(
      options({ address: `127.0.0.1:${server.port}`, request_timeout_ms: 5000, connect_timeout_ms: 2000 }),
    );
    await storage.createShard('s');
    const b = batch(5000);
    await storage.append('s', [b]);
    const { batches } = await storage.read('s', 0, { maxBytes: 1 << 20 });
    expect(sha(batches[0]!.data)).toBe(sha(b.data));
    await storage.close();
    // Closing the client leaves the served engine open.
    expect((await engine.shardInfo('s')).nextOffset).toBe(1);
  });

  it('fails UNAVAILABLE when no journal server answers in time', async () => {
    const port = await closedPort();
    const error = await rejectionOf(
      journalRemote.open(options({ address: `127.0.0.1:${port}`, connect_timeout_ms: 200 })),
    );
    expect(isRobustMQError(error, ErrorCode.Unavailable), String(error)).toBe(true);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it('reads address and timeouts', () => {
    expect(parseRemoteJournalConfig({ address: 'journal-1:1228' })).toEqual({
      host: 'journal-1',
      port: 1228,
      requestTimeoutMs: 30_000,
      connectTimeoutMs: 5_000,
      maxReconnectDelayMs: 5_000,
    });
    expect(
      parseRemoteJournalConfig({
        address: '[::1]:9000',
        request_timeout_ms: 1500,
        connect_timeout_ms: 250n,
        max_reconnect_delay_ms: 1000,
      }),
    ).toEqual({
      host: '::1',
      port: 9000,
      requestTimeoutMs: 1500,
      connectTimeoutMs: 250,
      maxReconnectDelayMs: 1000,
    });
  });

  it('names the setting of every unknown key and bad value', async () => {
    expectConfigError(() => parseRemoteJournalConfig({}), 'address');
    for (const address of [
      'journal-1',
      'journal-1:0',
      'journal-1:70000',
      ':1228',
      '::1:1228',
      1228,
      'a b:1',
    ]) {
      expectConfigError(() => parseRemoteJournalConfig({ address }), 'address');
    }
    for (const value of [0, -5, 1.5, '100', null]) {
      expectConfigError(
        () => parseRemoteJournalConfig({ address: 'j:1', request_timeout_ms: value }),
        'request_timeout_ms',
      );
    }
    expectConfigError(
      () => parseRemoteJournalConfig({ address: 'j:1', connect_timeout_ms: 2 ** 31 }),
      'connect_timeout_ms',
    );
    expectConfigError(() => parseRemoteJournalConfig({ address: 'j:1', adress: 'j:2' }), 'adress');
    expectConfigError(
      () => parseRemoteJournalConfig({ address: 'j:1', group_commit_ms: 5 }),
      'group_commit_ms',
    );
    const error = await rejectionOf(journalRemote.open(options({ address: 'j:1', timeout: 5 })));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe('timeout');
  });
});
