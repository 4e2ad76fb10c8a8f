import {
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  isRobustMQError,
  shardConfigOf,
  shardName,
  type StorageEngine,
  type Topic,
  type TopicCatalog,
} from '@robustmq/core';
import { z } from 'zod';
import type { AdminApi } from '../api.js';
import { ApiError } from '../errors.js';
import { topicStorageClass } from '../storage-class.js';
import { authErrors, errorResponse, noContent, page, pageQuery, paginate } from '../schemas.js';
import type { ZodApp } from '../zod-app.js';

const topicName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,249}$/, 'use 1 to 249 of A-Z a-z 0-9 . _ -')
  .refine((name) => name !== '.' && name !== '..', 'cannot be . or ..');
const count = z.number().int().min(0);
const storageClass = z.enum(['memory', 'file', 'rocksdb', 'tiered']);

const topic = z.object({
  name: z.string(),
  partitions: z.number().int(),
  storageClass,
  retentionMs: z.number().nullable(),
  retentionBytes: z.number().nullable(),
  configs: z.record(z.string(), z.string()),
  createdAt: z.number().describe('Milliseconds since the epoch'),
  sizeBytes: z.number().describe('Bytes stored, all partitions'),
  messages: z.number().describe('Offsets between log start and next offset, all partitions'),
});

const partitionDetail = z.object({
  partition: z.number().int(),
  logStartOffset: z.number(),
  nextOffset: z.number(),
  sizeBytes: z.number(),
});

const nameParams = z.strictObject({ name: z.string() });

interface PartitionDetail {
  partition: number;
  logStartOffset: number;
  nextOffset: number;
  sizeBytes: number;
}

async function partitionDetails(storage: StorageEngine, t: Topic): Promise<PartitionDetail[]> {
  const details: PartitionDetail[] = [];
  for (let partition = 0; partition < t.partitions; partition++) {
    try {
      const info = await storage.shardInfo(shardName(t.name, partition));
      details.push({
        partition,
        logStartOffset: info.logStartOffset,
        nextOffset: info.nextOffset,
        sizeBytes: info.sizeBytes,
      });
    } catch (error) {
      // A partition whose shard is not created yet (an interrupted create) holds nothing.
      if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
      details.push({ partition, logStartOffset: 0, nextOffset: 0, sizeBytes: 0 });
    }
  }
  return details;
}

function withSizes(t: Topic, details: readonly PartitionDetail[]) {
  let sizeBytes = 0;
  let messages = 0;
  for (const d of details) {
    sizeBytes += d.sizeBytes;
    messages += d.nextOffset - d.logStartOffset;
  }
  return { ...t, sizeBytes, messages };
}

/** The request field behind each shard setting, for a storage refusal of it. */
const SHARD_SETTING_FIELDS: Readonly<Record<string, string>> = {
  segmentBytes: 'configs.segment.bytes',
  segmentMs: 'configs.segment.ms',
  maxBatchBytes: 'configs.max.message.bytes',
  retentionMs: 'retentionMs',
  retentionBytes: 'retentionBytes',
};

/** A storage refusal of a shard setting (`shard config maxBatchBytes must be ...`) naming the request field. */
function withSettingField(error: unknown): unknown {
  if (!isRobustMQError(error, ErrorCode.InvalidArgument)) return error;
  const setting = /^shard config (\w+) /.exec(error.message)?.[1];
  const field =
    setting !== undefined && Object.hasOwn(SHARD_SETTING_FIELDS, setting)
      ? SHARD_SETTING_FIELDS[setting]
      : undefined;
  return field === undefined ? error : new ApiError('INVALID_ARGUMENT', `${field}: ${error.message}`, field);
}

/** Refuses more partitions than the catalog allows, naming the field, before anything is written. */
function checkPartitions(catalog: TopicCatalog, partitions: number | undefined): void {
  if (partitions !== undefined && partitions > catalog.maxPartitions) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `a topic may have at most ${catalog.maxPartitions} partitions on this node`,
      'partitions',
    );
  }
}

/** The Kafka-named retention configs, each the same as a field of the topic. */
const RETENTION_CONFIGS = [
  ['retention.ms', 'retentionMs'],
  ['retention.bytes', 'retentionBytes'],
] as const;

/**
 * Takes `retention.ms` and `retention.bytes` out of `configs` into the topic's own fields, as Kafka
 * CreateTopics does, so what Kafka clients are told is what storage does: -1 is no limit, null
 * (removing the config) the default (7 days; no limit for bytes). Refuses a value that is no
 * whole number from -1 up, a retention given both ways, and a cleanup policy other than `delete`
 * (storage deletes old segments; it does not compact).
 */
function retentionFromConfigs(
  configs: Readonly<Record<string, string | null>>,
  fields: { retentionMs?: number | null; retentionBytes?: number | null },
): { retentionMs?: number | null; retentionBytes?: number | null } {
  const policy = configs['cleanup.policy'];
  if (policy !== undefined && policy !== null && policy !== 'delete') {
    throw new ApiError(
      'INVALID_ARGUMENT',
      'cleanup.policy: only delete is offered (no compaction)',
      'configs.cleanup.policy',
    );
  }
  const out: { retentionMs?: number | null; retentionBytes?: number | null } = {};
  for (const [name, field] of RETENTION_CONFIGS) {
    if (!Object.hasOwn(configs, name)) continue;
    if (fields[field] !== undefined) {
      throw new ApiError('INVALID_ARGUMENT', `give ${field} or configs.${name}, not both`, `configs.${name}`);
    }
    const value = configs[name];
    if (value === null || value === undefined) {
      out[field] = field === 'retentionMs' ? DEFAULT_SHARD_CONFIG.retentionMs : null;
      continue;
    }
    const number = Number(value);
    if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(number) || number < -1) {
      throw new ApiError(
        'INVALID_ARGUMENT',
        `${name} must be -1 (no limit) or a whole number, got ${value}`,
        `configs.${name}`,
      );
    }
    out[field] = number === -1 ? null : number;
  }
  return out;
}

/** `configs` without the retention configs, which are the topic's own fields. */
function withoutRetention<T>(configs: Readonly<Record<string, T>>): Record<string, T> {
  const rest = { ...configs };
  for (const [name] of RETENTION_CONFIGS) delete rest[name];
  return rest;
}

/** Checks the Kafka-named configs the storage acts on before anything is written. */
function checkConfigs(t: Topic): void {
  try {
    shardConfigOf(t);
  } catch (error) {
    if (isRobustMQError(error, ErrorCode.InvalidArgument)) {
      const key = error.message.split(' ')[0]!;
      throw new ApiError('INVALID_ARGUMENT', error.message, `configs.${key}`);
    }
    throw error;
  }
}

export function topicRoutes(app: ZodApp, api: AdminApi): void {
  app.get(
    '/api/v1/topics',
    {
      schema: {
        summary: 'List topics with partitions, storage class, retention, sizes and message counts',
        tags: ['topics'],
        querystring: pageQuery,
        response: { 200: page(topic), ...authErrors },
      },
    },
    async (request) => {
      const { catalog, storage } = api.topics();
      const { limit, after } = request.query;
      const found = await paginate(
        limit,
        (n) => catalog.list({ ...(after !== undefined && { after }), limit: n }),
        (t) => t.name,
      );
      const items = await Promise.all(
        found.items.map(async (t) => withSizes(t, await partitionDetails(storage, t))),
      );
      return { items, next: found.next };
    },
  );

  app.post(
    '/api/v1/topics',
    {
      schema: {
        summary: 'Create a topic',
        tags: ['topics'],
        body: z.strictObject({
          name: topicName,
          partitions: z.number().int().min(1).max(100_000).default(1),
          storageClass: storageClass
            .optional()
            .describe("the class of this node's storage engine (the default); any other is refused"),
          retentionMs: count.nullable().optional().describe('null keeps records forever; default 7 days'),
          retentionBytes: count
            .nullable()
            .optional()
            .describe('per partition; null (the default) is no limit'),
          configs: z.record(z.string().min(1), z.string()).default({}),
        }),
        response: { 201: topic, 400: errorResponse, 409: errorResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      const { catalog } = api.topics();
      const body = request.body;
      const retention = { ...body, ...retentionFromConfigs(body.configs, body) };
      const fresh = {
        name: body.name,
        partitions: body.partitions,
        storageClass: topicStorageClass(api.options.config.storage.engine, body.storageClass),
        retentionMs:
          retention.retentionMs === undefined ? DEFAULT_SHARD_CONFIG.retentionMs : retention.retentionMs,
        retentionBytes: retention.retentionBytes ?? null,
        configs: withoutRetention(body.configs),
      };
      checkPartitions(catalog, fresh.partitions);
      checkConfigs({ ...fresh, createdAt: 0 });
      let created: Topic;
      try {
        created = await catalog.create(fresh);
      } catch (error) {
        throw withSettingField(error);
      }
      api.options.logger.info(
        { topic: created.name, partitions: created.partitions },
        'topic created through the admin API',
      );
      return reply.code(201).send({ ...created, sizeBytes: 0, messages: 0 });
    },
  );

  app.get(
    '/api/v1/topics/:name',
    {
      schema: {
        summary: 'Describe a topic, with offsets and size per partition',
        tags: ['topics'],
        params: nameParams,
        response: {
          200: topic.extend({ partitionDetails: z.array(partitionDetail) }),
          404: errorResponse,
          ...authErrors,
        },
      },
    },
    async (request) => {
      const { catalog, storage } = api.topics();
      const found = await catalog.get(request.params.name);
      if (found === null) throw new ApiError('NOT_FOUND', `topic ${request.params.name} does not exist`);
      const details = await partitionDetails(storage, found);
      return { ...withSizes(found, details), partitionDetails: details };
    },
  );

  app.patch(
    '/api/v1/topics/:name',
    {
      schema: {
        summary: 'Alter a topic: add partitions, change retention, set or remove (null) configs',
        tags: ['topics'],
        params: nameParams,
        body: z.strictObject({
          partitions: z.number().int().min(1).max(100_000).optional(),
          retentionMs: count.nullable().optional(),
          retentionBytes: count.nullable().optional(),
          configs: z.record(z.string().min(1), z.string().nullable()).optional(),
        }),
        response: { 200: topic, 400: errorResponse, 404: errorResponse, ...authErrors },
      },
    },
    async (request) => {
      const { catalog, storage } = api.topics();
      const name = request.params.name;
      const current = await catalog.get(name);
      if (current === null) throw new ApiError('NOT_FOUND', `topic ${name} does not exist`);
      const change = request.body;
      if (change.partitions !== undefined && change.partitions < current.partitions) {
        throw new ApiError(
          'INVALID_ARGUMENT',
          `partitions can only grow (topic ${name} has ${current.partitions})`,
          'partitions',
        );
      }
      checkPartitions(catalog, change.partitions);
      const retention = { ...change, ...retentionFromConfigs(change.configs ?? {}, change) };
      const configChange = change.configs === undefined ? undefined : withoutRetention(change.configs);
      const configs: Record<string, string> = { ...current.configs };
      for (const [key, value] of Object.entries(configChange ?? {})) {
        if (value === null) delete configs[key];
        else configs[key] = value;
      }
      const next: Topic = {
        ...current,
        configs,
        ...(retention.retentionMs !== undefined && { retentionMs: retention.retentionMs }),
        ...(retention.retentionBytes !== undefined && { retentionBytes: retention.retentionBytes }),
      };
      checkConfigs(next);
      let altered: Topic;
      try {
        altered = await catalog.alter(name, {
          ...(change.partitions !== undefined && { partitions: change.partitions }),
          ...(retention.retentionMs !== undefined && { retentionMs: retention.retentionMs }),
          ...(retention.retentionBytes !== undefined && { retentionBytes: retention.retentionBytes }),
          ...(configChange !== undefined && { configs: configChange }),
        });
      } catch (error) {
        throw withSettingField(error);
      }
      api.options.logger.info({ topic: name, change }, 'topic altered through the admin API');
      return withSizes(altered, await partitionDetails(storage, altered));
    },
  );

  app.delete(
    '/api/v1/topics/:name',
    {
      schema: {
        summary: 'Delete a topic and its stored messages',
        tags: ['topics'],
        params: nameParams,
        response: { 204: noContent, 404: errorResponse, ...authErrors },
      },
    },
    async (request, reply) => {
      const { catalog } = api.topics();
      if (!(await catalog.delete(request.params.name))) {
        throw new ApiError('NOT_FOUND', `topic ${request.params.name} does not exist`);
      }
      api.options.logger.info({ topic: request.params.name }, 'topic deleted through the admin API');
      return reply.code(204).send();
    },
  );
}
