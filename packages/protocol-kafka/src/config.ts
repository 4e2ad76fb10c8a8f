import { ConfigError } from '@robustmq/core';
import { z } from 'zod';

/** SASL mechanisms the broker can offer. */
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

const port = z.number().int().min(0).max(65_535);

const schema = z
  .object({
    port: port.default(9092),
    listeners: z
      .array(z.enum(['tcp', 'tls']))
      .min(1)
      .refine((l) => new Set(l).size === l.length, 'must list "tcp" and/or "tls", each once')
      .default(['tcp']),
    tls_port: port.default(9093),
    tls_cert: z.string().min(1).optional(),
    tls_key: z.string().min(1).optional(),
    tls_ca: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    advertised_host: z.string().min(1).optional(),
    advertised_port: z.number().int().min(1).max(65_535).optional(),
    auto_create_topics: z.boolean().default(true),
    default_partitions: z.number().int().min(1).max(10_000).default(1),
    max_frame_size: z
      .number()
      .int()
      .min(1024)
      .max(2 ** 31 - 1)
      .default(104_857_600),
    connections_max_idle_ms: z.number().int().min(1_000).default(600_000),
    sasl_enabled: z.boolean().default(false),
    sasl_mechanisms: z
      .array(z.enum(SASL_MECHANISMS))
      .min(1)
      .default([...SASL_MECHANISMS]),
    group_min_session_timeout_ms: z.number().int().min(1).default(6_000),
    group_max_session_timeout_ms: z.number().int().min(1).default(1_800_000),
    group_initial_rebalance_delay_ms: z.number().int().min(0).default(3_000),
    group_max_size: z
      .number()
      .int()
      .min(1)
      .default(2 ** 31 - 1),
    cluster_id: z.string().min(1).default('robustmq-kafka-cluster'),
  })
  .strict();

type Parsed = z.infer<typeof schema>;

/** The `[kafka]` section of the server config, validated, with defaults filled in. */
export interface KafkaSettings {
  /** TCP port (default 9092; 0 picks a free one). */
  port: number;
  /** The listeners opened: `tcp`, `tls` or both (default `["tcp"]`). */
  listeners: readonly ('tcp' | 'tls')[];
  /** Kafka over TLS port (default 9093). */
  tlsPort: number;
  /** PEM files for the `tls` listener. */
  tls: { cert: string; key: string; ca?: string } | undefined;
  /** Address to bind; the server's `bind` when unset. */
  host: string | undefined;
  /**
   * Host clients are told to connect to (Metadata, FindCoordinator); when unset, the address each
   * client connected to.
   */
  advertisedHost: string | undefined;
  /** Port clients of the `tcp` listener are told to connect to; the listener's port when unset. */
  advertisedPort: number | undefined;
  /** Whether Metadata and Produce create unknown topics (Kafka's `auto.create.topics.enable`). */
  autoCreateTopics: boolean;
  /** Partitions of an auto-created topic, and of CreateTopics asking for -1. */
  defaultPartitions: number;
  /** Largest request frame accepted, in bytes (Kafka's `socket.request.max.bytes`). */
  maxFrameSize: number;
  /** A connection with no traffic and no request under way this long is closed (Kafka's `connections.max.idle.ms`). */
  connectionsMaxIdleMs: number;
  /** Whether clients must authenticate with SASL before any request but ApiVersions and SASL. */
  saslEnabled: boolean;
  /** Mechanisms offered when SASL is on. */
  saslMechanisms: readonly SaslMechanism[];
  /** Bounds on a consumer group member's session timeout. */
  groupMinSessionTimeoutMs: number;
  groupMaxSessionTimeoutMs: number;
  /** How long the first rebalance of an empty group waits for more members. */
  groupInitialRebalanceDelayMs: number;
  /** Most members in one consumer group. */
  groupMaxSize: number;
  /** The cluster id reported by Metadata and DescribeCluster. */
  clusterId: string;
  /** The settings the section named; the others have their defaults (DescribeConfigs tells which). */
  named: ReadonlySet<string>;
}

function settingOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return issue.keys[0] ?? 'kafka';
  return issue.path.length > 0 ? String(issue.path[0]) : 'kafka';
}

/** Reads the `[kafka]` section; throws a ConfigError naming the first unknown or invalid setting. */
export function parseSettings(section: Readonly<Record<string, unknown>>): KafkaSettings {
  const result = schema.safeParse(section);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const setting = settingOf(issue);
    throw new ConfigError(setting, issue.code === 'unrecognized_keys' ? 'unknown setting' : issue.message);
  }
  const parsed: Parsed = result.data;
  if (parsed.group_min_session_timeout_ms > parsed.group_max_session_timeout_ms) {
    throw new ConfigError('group_min_session_timeout_ms', 'must not exceed group_max_session_timeout_ms');
  }
  return {
    port: parsed.port,
    listeners: parsed.listeners,
    tlsPort: parsed.tls_port,
    tls: parseTls(parsed),
    host: parsed.host,
    advertisedHost: parsed.advertised_host,
    advertisedPort: parsed.advertised_port,
    autoCreateTopics: parsed.auto_create_topics,
    defaultPartitions: parsed.default_partitions,
    maxFrameSize: parsed.max_frame_size,
    connectionsMaxIdleMs: parsed.connections_max_idle_ms,
    saslEnabled: parsed.sasl_enabled,
    saslMechanisms: parsed.sasl_mechanisms,
    groupMinSessionTimeoutMs: parsed.group_min_session_timeout_ms,
    groupMaxSessionTimeoutMs: parsed.group_max_session_timeout_ms,
    groupInitialRebalanceDelayMs: parsed.group_initial_rebalance_delay_ms,
    groupMaxSize: parsed.group_max_size,
    clusterId: parsed.cluster_id,
    named: new Set(Object.keys(section)),
  };
}

/** The certificate goes with the key, and with a `tls` listener: nothing is set in vain. */
function parseTls(parsed: Parsed): KafkaSettings['tls'] {
  const { tls_cert: cert, tls_key: key, tls_ca: ca } = parsed;
  const wantsTls = parsed.listeners.includes('tls');
  if (cert === undefined && key === undefined) {
    if (ca !== undefined) throw new ConfigError('tls_ca', 'needs tls_cert and tls_key');
    if (wantsTls) throw new ConfigError('listeners', '"tls" needs tls_cert and tls_key');
    return undefined;
  }
  if (key === undefined) throw new ConfigError('tls_key', 'must be set with tls_cert');
  if (cert === undefined) throw new ConfigError('tls_cert', 'must be set with tls_key');
  if (!wantsTls) throw new ConfigError('tls_cert', 'is set but listeners does not include "tls"');
  return { cert, key, ...(ca === undefined ? {} : { ca }) };
}
