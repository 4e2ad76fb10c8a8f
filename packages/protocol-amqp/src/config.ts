import { ConfigError } from '@robustmq/core';
import { z } from 'zod';

const port = z.number().int().min(0).max(65_535);

/** The address kinds of the address model: anycast queues and multicast topics. */
export type AddressKind = 'queue' | 'topic';

const schema = z
  .strictObject({
    /** AMQP over TCP (default 5672; 0 picks a free one). */
    port: port.default(5672),
    /** AMQP over TLS (default 5671). */
    tls_port: port.default(5671),
    /** Which listeners open: `tcp`, `tls` or both. */
    listeners: z
      .array(z.enum(['tcp', 'tls']))
      .min(1)
      .refine((l) => new Set(l).size === l.length, 'must not repeat a listener')
      .default(['tcp']),
    host: z.string().min(1).optional(),
    tls_cert: z.string().min(1).optional(),
    tls_key: z.string().min(1).optional(),
    tls_ca: z.string().min(1).optional(),
    /** Whether SASL ANONYMOUS (and connecting without SASL) is offered. */
    allow_anonymous: z.boolean().default(true),
    /** Largest frame accepted and advertised in `open`. */
    max_frame_size: z.number().int().min(512).max(16_777_216).default(65_536),
    /** Largest message accepted, in bytes. */
    max_message_size: z.number().int().min(1024).max(104_857_600).default(1_048_576),
    /** Most sessions per connection (`channel-max` + 1). */
    channel_max: z.number().int().min(0).max(65_535).default(255),
    /** Idle timeout advertised in `open`, in milliseconds; the peer sends heartbeats within it. 0 turns it off. */
    idle_timeout_ms: z.number().int().min(0).max(3_600_000).default(60_000),
    /** Time a client has from connecting to its `open` (protocol header and SASL included), in milliseconds. */
    handshake_timeout_ms: z.number().int().min(100).max(3_600_000).default(10_000),
    /** Credit each producer link gets: messages it may have in flight to storage. */
    link_credit: z.number().int().min(1).max(65_535).default(500),
    /** Address prefix that names a queue (anycast). */
    queue_prefix: z.string().min(1).default('queue://'),
    /** Address prefix that names a topic (multicast). */
    topic_prefix: z.string().min(1).default('topic://'),
    /** Kind of an unprefixed address that does not exist yet and whose link has no capability. */
    default_address_kind: z.enum(['queue', 'topic']).default('queue'),
    /** Whether attaching to an unknown address creates it. */
    auto_create: z.boolean().default(true),
    /** Where rejected messages go (an address, e.g. `queue://DLQ`); unset drops them. */
    dead_letter_address: z.string().min(1).optional(),
    /** Messages per queue kept in memory ready for delivery; the rest are read from storage as room frees up. */
    queue_memory_messages: z.number().int().min(10).max(10_000_000).default(10_000),
    /** Message bytes per queue kept in memory, as `queue_memory_messages` counts messages. */
    queue_memory_bytes: z
      .number()
      .int()
      .min(65_536)
      .max(2 ** 40)
      .default(64 * 1024 * 1024),
    /** Bytes buffered on a client's socket past which deliveries to it pause. */
    max_outgoing_bytes: z
      .number()
      .int()
      .min(1024)
      .max(2 ** 31 - 1)
      .default(1_048_576),
  })
  .superRefine((c, ctx) => {
    const wantsTls = c.listeners.includes('tls');
    if (wantsTls && (c.tls_cert === undefined || c.tls_key === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['listeners'], message: '"tls" needs tls_cert and tls_key' });
    }
    if (!wantsTls && (c.tls_cert !== undefined || c.tls_key !== undefined || c.tls_ca !== undefined)) {
      const setting = c.tls_cert !== undefined ? 'tls_cert' : c.tls_key !== undefined ? 'tls_key' : 'tls_ca';
      ctx.addIssue({ code: 'custom', path: [setting], message: 'is set but listeners has no "tls"' });
    }
    if (c.queue_prefix === c.topic_prefix) {
      ctx.addIssue({ code: 'custom', path: ['topic_prefix'], message: 'must differ from queue_prefix' });
    }
  });

/** The `[amqp]` section of the server config, validated, with defaults filled in. */
export interface AmqpSettings {
  port: number;
  tlsPort: number;
  listeners: readonly ('tcp' | 'tls')[];
  host: string | undefined;
  tls: { cert: string; key: string; ca?: string } | undefined;
  allowAnonymous: boolean;
  maxFrameSize: number;
  maxMessageSize: number;
  channelMax: number;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  linkCredit: number;
  queuePrefix: string;
  topicPrefix: string;
  defaultAddressKind: AddressKind;
  autoCreate: boolean;
  deadLetterAddress: string | undefined;
  queueMemoryMessages: number;
  queueMemoryBytes: number;
  maxOutgoingBytes: number;
}

/** Reads the `[amqp]` section; throws a ConfigError naming the first unknown or invalid setting. */
export function parseSettings(section: Readonly<Record<string, unknown>>): AmqpSettings {
  const parsed = schema.safeParse(section);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const setting =
      issue.code === 'unrecognized_keys' ? String(issue.keys[0]) : issue.path.map(String).join('.') || 'amqp';
    const message = issue.code === 'unrecognized_keys' ? 'unknown setting' : issue.message;
    throw new ConfigError(setting, message);
  }
  const c = parsed.data;
  return {
    port: c.port,
    tlsPort: c.tls_port,
    listeners: c.listeners,
    host: c.host,
    tls:
      c.tls_cert !== undefined && c.tls_key !== undefined
        ? { cert: c.tls_cert, key: c.tls_key, ...(c.tls_ca === undefined ? {} : { ca: c.tls_ca }) }
        : undefined,
    allowAnonymous: c.allow_anonymous,
    maxFrameSize: c.max_frame_size,
    maxMessageSize: c.max_message_size,
    channelMax: c.channel_max,
    idleTimeoutMs: c.idle_timeout_ms,
    handshakeTimeoutMs: c.handshake_timeout_ms,
    linkCredit: c.link_credit,
    queuePrefix: c.queue_prefix,
    topicPrefix: c.topic_prefix,
    defaultAddressKind: c.default_address_kind,
    autoCreate: c.auto_create,
    deadLetterAddress: c.dead_letter_address,
    queueMemoryMessages: c.queue_memory_messages,
    queueMemoryBytes: c.queue_memory_bytes,
    maxOutgoingBytes: c.max_outgoing_bytes,
  };
}
