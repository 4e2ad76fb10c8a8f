import { DEFAULT_SHARD_CONFIG, ErrorCode, RobustMQError } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../src/broker/broker.js';
import { handleAlterConfigs } from '../src/broker/handlers/alter-configs.js';
import { handleCreatePartitions } from '../src/broker/handlers/create-partitions.js';
import { handleCreateTopics } from '../src/broker/handlers/create-topics.js';
import { handleDescribeConfigs } from '../src/broker/handlers/describe-configs.js';
import { handleIncrementalAlterConfigs } from '../src/broker/handlers/incremental-alter-configs.js';
import { handleProduce } from '../src/broker/handlers/produce.js';
import { encodeRecordBatch, KafkaErrorCode } from '../src/codec/index.js';
import { parseSettings } from '../src/config.js';
import { startInProcessBroker, type InProcessBroker } from './helpers/in-process-broker.js';

let storage: MemoryStorageEngine;
let node: InProcessBroker;
let broker: Broker;
const context = (apiKey: number, apiVersion: number) => node.context(apiKey, apiVersion);

beforeEach(async () => {
  storage = new MemoryStorageEngine();
  node = await startInProcessBroker(storage, { default_partitions: 3 });
  broker = node.broker;
});

afterEach(async () => {
  await node.stop();
  await storage.close();
});

const create = (configs: Array<{ name: string; value: string }>, name = 'configured') =>
  handleCreateTopics(
    { topics: [{ name, numPartitions: 2, replicationFactor: 1, assignments: [], configs }], timeoutMs: 1000 },
    context(19, 7),
  );

const alter = (configs: Array<{ name: string; configOperation: number; value: string | null }>) =>
  handleIncrementalAlterConfigs(
    { resources: [{ resourceType: 2, resourceName: 'configured', configs }], validateOnly: false },
    context(44, 1),
  );

describe('topic configs act on storage', () => {
  it('applies configs given at creation to every partition shard', async () => {
    const created = await create([
      { name: 'retention.ms', value: '60000' },
      { name: 'retention.bytes', value: '1048576' },
      { name: 'segment.bytes', value: '65536' },
      { name: 'max.message.bytes', value: '2048' },
      { name: 'cleanup.policy', value: 'delete' },
    ]);
    expect(created.topics[0]).toMatchObject({ errorCode: 0, numPartitions: 2 });
    for (const partition of [0, 1]) {
      expect((await storage.shardInfo(`configured/${partition}`)).config).toMatchObject({
        retentionMs: 60000,
        retentionBytes: 1048576,
        segmentBytes: 65536,
        maxBatchBytes: 2048,
      });
    }
    // max.message.bytes bounds what Produce accepts.
    const big = await encodeRecordBatch({ records: [{ value: Buffer.alloc(4096, 1) }] });
    const produced = await handleProduce(
      {
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: 'configured', partitionData: [{ index: 0, records: big }] }],
      },
      context(0, 9),
    );
    expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(KafkaErrorCode.messageTooLarge);
  });

  it('alters, deletes and reports configs incrementally; retention.ms then removes old records', async () => {
    await create([]);
    expect(
      (await alter([{ name: 'retention.ms', configOperation: 0, value: '1000' }])).responses[0]!.errorCode,
    ).toBe(0);
    expect((await storage.shardInfo('configured/0')).config.retentionMs).toBe(1000);
    const old = await encodeRecordBatch({ records: [{ value: 'old', timestamp: Date.now() - 60_000 }] });
    await handleProduce(
      {
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: 'configured', partitionData: [{ index: 0, records: old }] }],
      },
      context(0, 9),
    );
    expect((await storage.shardInfo('configured/0')).nextOffset).toBe(1);
    await storage.enforceRetention(Date.now());
    expect((await storage.shardInfo('configured/0')).logStartOffset).toBe(1);

    await alter([{ name: 'retention.ms', configOperation: 1, value: null }]);
    expect((await storage.shardInfo('configured/0')).config.retentionMs).toBe(7 * 24 * 3600 * 1000);
    const described = await handleDescribeConfigs(
      { resources: [{ resourceType: 2, resourceName: 'configured', configurationKeys: ['retention.ms'] }] },
      context(32, 4),
    );
    expect(described.results[0]!.configs).toEqual([
      expect.objectContaining({ name: 'retention.ms', value: '604800000', configSource: 5 }),
    ]);
  });

  it('rolls segments by segment.ms set at creation or altered, back to the default once removed', async () => {
    const segmentMs = async () =>
      Promise.all([0, 1].map(async (p) => (await storage.shardInfo(`configured/${p}`)).config.segmentMs));
    expect((await create([{ name: 'segment.ms', value: '3600000' }])).topics[0]!.errorCode).toBe(0);
    expect(await segmentMs()).toEqual([3_600_000, 3_600_000]);

    expect(
      (await alter([{ name: 'segment.ms', configOperation: 0, value: '60000' }])).responses[0]!.errorCode,
    ).toBe(0);
    expect(await segmentMs()).toEqual([60_000, 60_000]);
    const replaced = await handleAlterConfigs(
      {
        resources: [
          { resourceType: 2, resourceName: 'configured', configs: [{ name: 'segment.ms', value: '1' }] },
        ],
        validateOnly: false,
      },
      context(33, 2),
    );
    expect(replaced.responses[0]!.errorCode).toBe(0);
    expect(await segmentMs()).toEqual([1, 1]);

    // As Kafka: at least 1 ms.
    for (const value of ['0', '-1', 'weekly']) {
      const bad = await alter([{ name: 'segment.ms', configOperation: 0, value }]);
      expect(bad.responses[0]).toMatchObject({ errorCode: KafkaErrorCode.invalidConfig });
      expect((await create([{ name: 'segment.ms', value }], 'refused')).topics[0]!.errorCode).toBe(
        KafkaErrorCode.invalidConfig,
      );
    }
    expect(await segmentMs()).toEqual([1, 1]);

    expect(
      (await alter([{ name: 'segment.ms', configOperation: 1, value: null }])).responses[0]!.errorCode,
    ).toBe(0);
    expect(await segmentMs()).toEqual([604_800_000, 604_800_000]);
  });

  it('sets segment.bytes and max.message.bytes back to their defaults on the shards once removed', async () => {
    await create([
      { name: 'segment.bytes', value: '1048576' },
      { name: 'max.message.bytes', value: '4096' },
    ]);
    const config = async () => (await storage.shardInfo('configured/1')).config;
    expect(await config()).toMatchObject({ segmentBytes: 1_048_576, maxBatchBytes: 4096 });
    const removed = await alter([
      { name: 'segment.bytes', configOperation: 1, value: null },
      { name: 'max.message.bytes', configOperation: 1, value: null },
    ]);
    expect(removed.responses[0]!.errorCode).toBe(0);
    expect(await config()).toMatchObject({
      segmentBytes: DEFAULT_SHARD_CONFIG.segmentBytes,
      maxBatchBytes: DEFAULT_SHARD_CONFIG.maxBatchBytes,
    });
  });

  it('refuses compaction, unknown configs and bad values with INVALID_CONFIG', async () => {
    expect((await create([{ name: 'cleanup.policy', value: 'compact' }], 'a')).topics[0]!.errorCode).toBe(
      KafkaErrorCode.invalidConfig,
    );
    expect((await create([{ name: 'no.such.config', value: '1' }], 'b')).topics[0]!.errorCode).toBe(
      KafkaErrorCode.invalidConfig,
    );
    await create([]);
    const bad = await alter([{ name: 'segment.bytes', configOperation: 0, value: 'lots' }]);
    expect(bad.responses[0]).toMatchObject({ errorCode: KafkaErrorCode.invalidConfig });
    expect(await broker.catalog.get('a')).toBeNull();
  });
});

describe('config admin as Kafka answers it', () => {
  it('APPENDs and SUBTRACTs only on list configs, starting from the default when unset', async () => {
    await create([]);
    // cleanup.policy is unset: APPEND starts from its default, delete.
    const appended = await alter([{ name: 'cleanup.policy', configOperation: 2, value: 'delete' }]);
    expect(appended.responses[0]!.errorCode).toBe(0);
    // Compaction is refused here, so adding it to the default list is refused too.
    const compacted = await alter([{ name: 'cleanup.policy', configOperation: 2, value: 'compact' }]);
    expect(compacted.responses[0]!.errorCode).toBe(KafkaErrorCode.invalidConfig);
    for (const configOperation of [2, 3]) {
      const onNumber = await alter([{ name: 'retention.ms', configOperation, value: '1000' }]);
      expect(onNumber.responses[0]).toMatchObject({
        errorCode: KafkaErrorCode.invalidConfig,
        errorMessage: expect.stringMatching(/not allowed for config key: retention\.ms/),
      });
    }
    expect((await storage.shardInfo('configured/0')).config.retentionMs).toBe(7 * 24 * 3600 * 1000);
  });

  it('refuses a config named twice, and an unknown operation, with INVALID_REQUEST', async () => {
    await create([]);
    const twice = await alter([
      { name: 'retention.ms', configOperation: 0, value: '1000' },
      { name: 'retention.ms', configOperation: 1, value: null },
    ]);
    expect(twice.responses[0]).toMatchObject({
      errorCode: KafkaErrorCode.invalidRequest,
      errorMessage: expect.stringMatching(/duplicate config keys/),
    });
    const unknown = await alter([{ name: 'retention.ms', configOperation: 9, value: '1000' }]);
    expect(unknown.responses[0]!.errorCode).toBe(KafkaErrorCode.invalidRequest);
    const replaced = await handleAlterConfigs(
      {
        resources: [
          {
            resourceType: 2,
            resourceName: 'configured',
            configs: [
              { name: 'segment.bytes', value: '65536' },
              { name: 'segment.bytes', value: '131072' },
            ],
          },
        ],
        validateOnly: false,
      },
      context(33, 2),
    );
    expect(replaced.responses[0]!.errorCode).toBe(KafkaErrorCode.invalidRequest);
    expect((await broker.catalog.get('configured'))!.configs).toEqual({});
  });

  it('checks but changes nothing under validate_only: AlterConfigs, IncrementalAlterConfigs, CreatePartitions', async () => {
    await create([{ name: 'retention.ms', value: '60000' }]);
    const resource = { resourceType: 2, resourceName: 'configured' };
    const replaced = await handleAlterConfigs(
      {
        resources: [{ ...resource, configs: [{ name: 'segment.bytes', value: '65536' }] }],
        validateOnly: true,
      },
      context(33, 2),
    );
    const incremental = await handleIncrementalAlterConfigs(
      {
        resources: [{ ...resource, configs: [{ name: 'retention.ms', configOperation: 1, value: null }] }],
        validateOnly: true,
      },
      context(44, 1),
    );
    const grown = await handleCreatePartitions(
      { topics: [{ name: 'configured', count: 4, assignments: null }], timeoutMs: 1000, validateOnly: true },
      context(37, 3),
    );
    expect([replaced.responses[0]!.errorCode, incremental.responses[0]!.errorCode]).toEqual([0, 0]);
    expect(grown.results[0]!.errorCode).toBe(0);
    expect(await broker.catalog.get('configured')).toMatchObject({
      partitions: 2,
      retentionMs: 60000,
      configs: {},
    });
    // A bad value is still refused when only validating.
    const bad = await handleAlterConfigs(
      {
        resources: [{ ...resource, configs: [{ name: 'segment.bytes', value: 'lots' }] }],
        validateOnly: true,
      },
      context(33, 2),
    );
    expect(bad.responses[0]!.errorCode).toBe(KafkaErrorCode.invalidConfig);
  });

  it('describes broker configs of this broker only (INVALID_REQUEST for another id), none for ""', async () => {
    const describe = (resourceName: string) =>
      handleDescribeConfigs(
        { resources: [{ resourceType: 4, resourceName, configurationKeys: null }] },
        context(32, 4),
      ).then((response) => response.results[0]!);
    expect((await describe(String(broker.nodeId))).configs).toContainEqual(
      expect.objectContaining({ name: 'broker.id', value: String(broker.nodeId) }),
    );
    expect(await describe('')).toMatchObject({ errorCode: 0, configs: [] });
    for (const other of [String(broker.nodeId + 1), 'not-a-number']) {
      expect(await describe(other)).toMatchObject({ errorCode: KafkaErrorCode.invalidRequest, configs: [] });
    }
  });

  it('lists synonyms only when asked: the topic value, then the broker default it overrides', async () => {
    await create([{ name: 'retention.ms', value: '60000' }]);
    const describe = (includeSynonyms: boolean) =>
      handleDescribeConfigs(
        {
          resources: [
            {
              resourceType: 2,
              resourceName: 'configured',
              configurationKeys: ['retention.ms', 'segment.bytes'],
            },
          ],
          includeSynonyms,
        },
        context(32, 4),
      ).then((response) => response.results[0]!.configs);
    expect(await describe(true)).toEqual([
      expect.objectContaining({
        name: 'retention.ms',
        synonyms: [
          { name: 'retention.ms', value: '60000', source: 1 },
          { name: 'log.retention.ms', value: '604800000', source: 5 },
        ],
      }),
      expect.objectContaining({
        name: 'segment.bytes',
        configSource: 5,
        synonyms: [{ name: 'log.segment.bytes', value: expect.any(String), source: 5 }],
      }),
    ]);
    expect((await describe(false)).map((config) => config.synonyms)).toEqual([[], []]);
  });
});

describe('config types and documentation', () => {
  it("reports each config's Kafka type, and documentation only when asked", async () => {
    await create([]);
    const describe = (resourceType: number, resourceName: string, includeDocumentation: boolean) =>
      handleDescribeConfigs(
        { resources: [{ resourceType, resourceName, configurationKeys: null }], includeDocumentation },
        context(32, 4),
      ).then((response) => new Map(response.results[0]!.configs.map((config) => [config.name, config])));
    const topic = await describe(2, 'configured', true);
    // Kafka's types: BOOLEAN 1, STRING 2, INT 3, SHORT 4, LONG 5, DOUBLE 6, LIST 7.
    const types = (configs: typeof topic) =>
      Object.fromEntries([...configs].map(([name, config]) => [name, config.configType]));
    expect(types(topic)).toMatchObject({
      'retention.ms': 5,
      'segment.bytes': 3,
      'cleanup.policy': 7,
      'compression.type': 2,
      'min.cleanable.dirty.ratio': 6,
      preallocate: 1,
    });
    expect([...topic.values()].every((config) => (config.configType ?? 0) > 0)).toBe(true);
    expect(topic.get('compression.type')!.documentation).toMatch(/recompress/);
    expect(topic.get('preallocate')!.documentation).toMatch(/no effect/);
    expect([...(await describe(2, 'configured', false)).values()].map((c) => c.documentation)).toEqual(
      [...topic.values()].map(() => null),
    );
    const node = await describe(4, String(broker.nodeId), true);
    expect(types(node)).toMatchObject({
      'broker.id': 3,
      'auto.create.topics.enable': 1,
      'offsets.topic.replication.factor': 4,
    });
    expect(node.get('num.partitions')!.documentation).toMatch(/kafka\.default_partitions/);
  });
});

describe('broker config sources', () => {
  it('reports what the config file sets as static broker configs, the rest as defaults', async () => {
    const described = await handleDescribeConfigs(
      { resources: [{ resourceType: 4, resourceName: String(broker.nodeId), configurationKeys: null }] },
      context(32, 4),
    );
    const sources = Object.fromEntries(
      described.results[0]!.configs.map((config) => [
        config.name,
        [config.value, config.configSource, config.isDefault],
      ]),
    );
    // STATIC_BROKER_CONFIG 4, DEFAULT_CONFIG 5.
    expect(sources).toMatchObject({
      'num.partitions': ['3', 4, false],
      'auto.create.topics.enable': ['true', 5, true],
      'socket.request.max.bytes': ['104857600', 5, true],
      'broker.id': ['1', 4, false],
      // The broker configs topics take their defaults from, as Kafka lists them for a broker.
      'message.max.bytes': [String(DEFAULT_SHARD_CONFIG.maxBatchBytes), 5, true],
      'log.retention.ms': [String(DEFAULT_SHARD_CONFIG.retentionMs), 5, true],
      'log.retention.bytes': ['-1', 5, true],
      'log.segment.bytes': [String(DEFAULT_SHARD_CONFIG.segmentBytes), 5, true],
      'log.cleanup.policy': ['delete', 5, true],
    });
  });
});

describe('a config the storage refuses', () => {
  it('is answered with an error and recorded nowhere, neither in the topic nor on any partition', async () => {
    await create([]);
    const before = (await storage.shardInfo('configured/0')).config.maxBatchBytes;
    // An engine with a lower ceiling than Kafka's own check (the journal takes at most 1 GiB).
    const update = storage.updateShardConfig.bind(storage);
    storage.updateShardConfig = (shard, config) =>
      (config.maxBatchBytes ?? 0) > 2 ** 30
        ? Promise.reject(new RobustMQError(ErrorCode.InvalidArgument, 'shard config maxBatchBytes too large'))
        : update(shard, config);
    const refused = await alter([{ name: 'max.message.bytes', configOperation: 0, value: '2000000000' }]);
    expect(refused.responses[0]!.errorCode).not.toBe(0);
    expect((await broker.catalog.get('configured'))!.configs['max.message.bytes']).toBeUndefined();
    for (const partition of [0, 1]) {
      expect((await storage.shardInfo(`configured/${partition}`)).config.maxBatchBytes).toBe(before);
    }
  });
});

describe('[kafka] settings', () => {
  it('fills defaults', () => {
    expect(parseSettings({})).toMatchObject({
      port: 9092,
      listeners: ['tcp'],
      autoCreateTopics: true,
      defaultPartitions: 1,
      maxFrameSize: 104_857_600,
      saslEnabled: false,
    });
  });

  it('names the setting that is unknown or invalid', () => {
    expect(() => parseSettings({ prot: 1 })).toThrow(/prot: unknown setting/);
    expect(() => parseSettings({ port: -1 })).toThrow(/^port:/);
    expect(() => parseSettings({ listeners: ['tls'] })).toThrow(
      /listeners: "tls" needs tls_cert and tls_key/,
    );
    expect(() => parseSettings({ tls_cert: 'c.pem', tls_key: 'k.pem' })).toThrow(/tls_cert: is set but/);
  });
});
