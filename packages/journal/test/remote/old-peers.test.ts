import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { createRpcServer, type RpcServer } from '@robustmq/rpc';
import { client } from './helpers.js';

const servers: RpcServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A shard config as a journal node from before `segmentMs` keeps and reports it. */
const OLD_CONFIG = {
  retentionMs: 3_600_000,
  retentionBytes: null,
  segmentBytes: 1024,
  durability: 'group-commit',
  maxBatchBytes: 1024,
};

/** A journal node from before `segmentMs`: it refuses the key as unknown and never reports it. */
async function oldNode(): Promise<{ port: number; configs: unknown[] }> {
  const configs: unknown[] = [];
  const server = createRpcServer({ host: '127.0.0.1', port: 0 });
  for (const method of ['createShard', 'updateShardConfig', 'shardInfo']) {
    server.handle(`journal.${method}`, (body) => {
      const config = (body as { config?: Record<string, unknown> }).config;
      configs.push(config);
      if (config !== undefined && 'segmentMs' in config) {
        // What core's config check said then.
        throw new RobustMQError(ErrorCode.InvalidArgument, 'shard config has an unknown key "segmentMs"');
      }
      return Promise.resolve({
        name: 's',
        config: OLD_CONFIG,
        logStartOffset: 0,
        nextOffset: 0,
        sizeBytes: 0,
      });
    });
  }
  await server.listen();
  servers.push(server);
  return { port: server.port, configs };
}

describe('a journal node from before segmentMs', () => {
  it('reports segmentMs as null, as it rolls by size only', async () => {
    const node = await oldNode();
    expect((await client(node.port).shardInfo('s')).config).toEqual({ ...OLD_CONFIG, segmentMs: null });
  });

  it('is sent configs with segmentMs again without it', async () => {
    const node = await oldNode();
    const journal = client(node.port);
    const created = await journal.createShard('s', { segmentBytes: 1024, segmentMs: 60_000 });
    expect(created.config.segmentMs).toBeNull();
    const updated = await journal.updateShardConfig('s', { segmentMs: 60_000, retentionMs: 3_600_000 });
    expect(updated.config.segmentMs).toBeNull();
    expect(node.configs).toEqual([
      { segmentBytes: 1024, segmentMs: 60_000 },
      { segmentBytes: 1024 },
      { segmentMs: 60_000, retentionMs: 3_600_000 },
      { retentionMs: 3_600_000 },
    ]);
  });
});
