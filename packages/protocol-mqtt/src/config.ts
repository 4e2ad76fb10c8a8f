import { hostname } from 'node:os';
import { ConfigError, validateTopicName, type Transport } from '@robustmq/core';
import type { QueueFullPolicy } from './session.js';
import { parseFilter } from './topic-names.js';

/**
 * A binding (`[[mqtt.bindings]]`): MQTT messages whose topic matches `filter` are also appended
 * to the stored topic `topic`, where Kafka and AMQP clients read them (docs/cross-protocol.md).
 */
export interface BindingSettings {
  /** An MQTT topic filter (wildcards allowed; not a shared or exclusive subscription). */
  filter: string;
  /** The stored topic (a Kafka topic name); created at start when it does not exist. */
  topic: string;
  /** Partitions of the stored topic when the binding creates it (default 1). */
  partitions: number;
  /** Whether retained PUBLISH packets are appended too (default false: only live messages). */
  retained: boolean;
}

/** Which way a bridged topic travels: from the remote broker, to it, or both. */
export type BridgeDirection = 'in' | 'out' | 'both';

/** One topic rule of a bridge, as Mosquitto's `topic <pattern> <direction> <qos> <local-prefix> <remote-prefix>`. */
export interface BridgeTopic {
  /** A topic filter; locally it is `localPrefix + pattern`, on the remote `remotePrefix + pattern`. */
  pattern: string;
  direction: BridgeDirection;
  /** The highest QoS on both hops; a message keeps a lower one of its own. */
  qos: 0 | 1 | 2;
  localPrefix: string;
  remotePrefix: string;
}

/** A bridge (`[[mqtt.bridges]]`): this broker connects as a client to another one. */
export interface BridgeSettings {
  /** Unique; names the bridge in logs, metrics and `$SYS/broker/connection/<name>/state`. */
  name: string;
  /** `mqtt://host:port` or `mqtts://host:port`, from the `address` setting. */
  url: string;
  topics: readonly BridgeTopic[];
  remoteClientId: string;
  remoteUsername: string | undefined;
  remotePassword: string | undefined;
  /** Whether the remote forgets the bridge's session at each connect (default false). */
  cleanStart: boolean;
  keepaliveSeconds: number;
  /** 4 (MQTT 3.1.1) or 5. */
  protocolVersion: 4 | 5;
  /** PEM files; TLS is used for `mqtts://` addresses or when `caFile` is set. */
  tls: { caFile?: string; certFile?: string; keyFile?: string; insecure: boolean } | undefined;
  localUsername: string | undefined;
  localPassword: string | undefined;
  /** Seconds between connection attempts, jittered by up to half either way. */
  restartSeconds: number;
  /** Whether `$SYS/broker/connection/<name>/state` is published (retained `1` or `0`). */
  notifications: boolean;
}

/** The `[mqtt]` section of the server config, validated, with defaults filled in. */
export interface MqttSettings {
  /** TCP port (default 1883; 0 picks a free one). */
  port: number;
  /** The transports opened, each on its own port (default `["tcp"]`). */
  listeners: readonly Transport[];
  /** MQTT over TLS port (default 8883). */
  tlsPort: number;
  /** MQTT over WebSocket port (default 8083). */
  wsPort: number;
  /** MQTT over secure WebSocket port (default 8084). */
  wssPort: number;
  /** HTTP path of both WebSocket listeners (default `/mqtt`). */
  wsPath: string;
  /** PEM files for the `tls` and `wss` listeners; `ca` is optional. */
  tls: { cert: string; key: string; ca?: string } | undefined;
  /** Address to bind; the server's `bind` when unset. */
  host: string | undefined;
  /** Largest packet accepted from a client, in bytes; advertised to MQTT 5 clients. */
  maxPacketSize: number;
  /** Most levels in a topic name or filter. */
  maxTopicLevels: number;
  /** Longest keep-alive granted, in seconds; MQTT 5 clients asking for more (or 0) are told. */
  maxKeepAlive: number;
  /** Seconds a new connection has to send CONNECT. */
  connectTimeout: number;
  /** Whether a client may connect with an empty client id and get one assigned. */
  allowEmptyClientId: boolean;
  /** Longest session expiry granted, in seconds; also how long an MQTT 3 persistent session lasts. */
  maxSessionExpiryInterval: number;
  /** Most QoS 1 and 2 messages in flight to one client (lowered by its Receive Maximum). */
  maxInflightMessages: number;
  /** Most QoS 1 and 2 messages queued for one session beyond those in flight (online or offline). */
  maxQueuedMessages: number;
  /** What happens to a message for a full queue: it is dropped, or the oldest queued one is. */
  queueFullPolicy: QueueFullPolicy;
  /** Bytes buffered for a client's socket past which QoS 0 messages to it are dropped. */
  maxOutgoingBytes: number;
  /** Most QoS 2 messages a client may have unreleased at once (MQTT 5 Receive Maximum). */
  receiveMaximum: number;
  /** Most topic aliases a client may set (MQTT 5). */
  topicAliasMaximum: number;
  /** Seconds an authorization answer is reused for the same client and topic; 0 asks every time. */
  authorizationCacheSeconds: number;
  /** Seconds between `$SYS/` topic updates; 0 turns them off. */
  sysIntervalSeconds: number;
  /** Longest delay a `$delayed/{seconds}/{topic}` publish may ask for, in seconds. */
  maxDelayedPublishSeconds: number;
  /**
   * Most topic aliases the broker assigns on its own PUBLISH packets to one MQTT 5 client (also
   * bounded by the client's Topic Alias Maximum); 0 never assigns any.
   */
  outboundTopicAliases: number;
  /**
   * The Response Information sent to an MQTT 5 client asking for it, with `{clientId}` replaced
   * by its client id; empty sends none.
   */
  responseInformation: string;
  /** Built-in enhanced authentication methods offered to MQTT 5 clients (SCRAM-SHA-256/512). */
  enhancedAuthMethods: readonly string[];
  /** A module (package name or file path) whose exports add enhanced authentication methods. */
  enhancedAuthModule: string | undefined;
  /** MQTT topic filters bound to stored topics (default none). */
  bindings: readonly BindingSettings[];
  /** Connections to other MQTT brokers carrying chosen topics in and out (default none). */
  bridges: readonly BridgeSettings[];
}

/** The enhanced authentication methods built into the plugin. */
export const BUILTIN_AUTH_METHODS: readonly string[] = ['SCRAM-SHA-256', 'SCRAM-SHA-512'];

const U32 = 4_294_967_295;

interface IntegerSetting {
  key: keyof MqttSettings;
  min: number;
  max: number;
  default: number;
}

const INTEGERS: Record<string, IntegerSetting> = {
  port: { key: 'port', min: 0, max: 65_535, default: 1883 },
  tls_port: { key: 'tlsPort', min: 0, max: 65_535, default: 8883 },
  ws_port: { key: 'wsPort', min: 0, max: 65_535, default: 8083 },
  wss_port: { key: 'wssPort', min: 0, max: 65_535, default: 8084 },
  max_packet_size: { key: 'maxPacketSize', min: 64, max: 268_435_460, default: 1_048_576 },
  max_topic_levels: { key: 'maxTopicLevels', min: 1, max: 65_535, default: 128 },
  max_keep_alive: { key: 'maxKeepAlive', min: 1, max: 65_535, default: 65_535 },
  connect_timeout: { key: 'connectTimeout', min: 1, max: 3600, default: 10 },
  max_session_expiry_interval: { key: 'maxSessionExpiryInterval', min: 0, max: U32, default: U32 },
  max_inflight_messages: { key: 'maxInflightMessages', min: 1, max: 65_535, default: 1000 },
  max_queued_messages: { key: 'maxQueuedMessages', min: 0, max: 100_000_000, default: 1000 },
  max_outgoing_bytes: { key: 'maxOutgoingBytes', min: 1024, max: 2 ** 31 - 1, default: 1_048_576 },
  receive_maximum: { key: 'receiveMaximum', min: 1, max: 65_535, default: 65_535 },
  topic_alias_maximum: { key: 'topicAliasMaximum', min: 0, max: 65_535, default: 10 },
  authorization_cache_seconds: { key: 'authorizationCacheSeconds', min: 0, max: 86_400, default: 60 },
  sys_interval_seconds: { key: 'sysIntervalSeconds', min: 0, max: 86_400, default: 10 },
  max_delayed_publish_seconds: { key: 'maxDelayedPublishSeconds', min: 0, max: U32, default: 86_400 },
  outbound_topic_aliases: { key: 'outboundTopicAliases', min: 0, max: 65_535, default: 64 },
};

const TRANSPORTS: readonly Transport[] = ['tcp', 'tls', 'ws', 'wss'];
const FILES = ['tls_cert', 'tls_key', 'tls_ca'] as const;

/** Reads the `[mqtt]` section; throws a ConfigError naming the first unknown or invalid setting. */
export function parseSettings(section: Readonly<Record<string, unknown>>): MqttSettings {
  const settings: Record<string, unknown> = {
    host: undefined,
    allowEmptyClientId: true,
    queueFullPolicy: 'drop_newest',
    listeners: ['tcp'],
    wsPath: '/mqtt',
    responseInformation: 'response/{clientId}/',
    enhancedAuthMethods: BUILTIN_AUTH_METHODS,
    enhancedAuthModule: undefined,
    bindings: [],
    bridges: [],
  };
  const files: Partial<Record<(typeof FILES)[number], string>> = {};
  for (const spec of Object.values(INTEGERS)) settings[spec.key] = spec.default;
  for (const [name, value] of Object.entries(section)) {
    const spec = INTEGERS[name];
    if (spec) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < spec.min || value > spec.max) {
        throw new ConfigError(name, `must be an integer from ${spec.min} to ${spec.max}`);
      }
      settings[spec.key] = value;
    } else if (name === 'host') {
      if (typeof value !== 'string' || value.length === 0)
        throw new ConfigError(name, 'must be a non-empty string');
      settings.host = value;
    } else if (name === 'allow_empty_client_id') {
      if (typeof value !== 'boolean') throw new ConfigError(name, 'must be true or false');
      settings.allowEmptyClientId = value;
    } else if (name === 'queue_full_policy') {
      if (value !== 'drop_newest' && value !== 'drop_oldest') {
        throw new ConfigError(name, 'must be "drop_newest" or "drop_oldest"');
      }
      settings.queueFullPolicy = value;
    } else if (name === 'listeners') {
      settings.listeners = parseListeners(value);
    } else if (name === 'ws_path') {
      if (typeof value !== 'string' || !value.startsWith('/'))
        throw new ConfigError(name, 'must be a path starting with "/"');
      settings.wsPath = value;
    } else if (name === 'response_information') {
      if (typeof value !== 'string') throw new ConfigError(name, 'must be a string');
      settings.responseInformation = value;
    } else if (name === 'enhanced_auth_methods') {
      const valid = Array.isArray(value) && value.every((m) => BUILTIN_AUTH_METHODS.includes(m as string));
      if (!valid) {
        throw new ConfigError(
          name,
          `must list some of ${BUILTIN_AUTH_METHODS.map((m) => `"${m}"`).join(', ')}`,
        );
      }
      settings.enhancedAuthMethods = value as string[];
    } else if (name === 'enhanced_auth_module') {
      if (typeof value !== 'string' || value.length === 0)
        throw new ConfigError(name, 'must be a package name or a file path');
      settings.enhancedAuthModule = value;
    } else if (name === 'bindings') {
      settings.bindings = parseBindings(value);
    } else if (name === 'bridges') {
      settings.bridges = parseBridges(value);
    } else if ((FILES as readonly string[]).includes(name)) {
      if (typeof value !== 'string' || value.length === 0)
        throw new ConfigError(name, 'must be the path of a PEM file');
      files[name as (typeof FILES)[number]] = value;
    } else {
      throw new ConfigError(name, 'unknown setting');
    }
  }
  settings.tls = parseTls(files, settings.listeners as readonly Transport[]);
  // A bridge reaches this broker through its own TCP listener on loopback (bridges.ts).
  if (
    (settings.bridges as readonly BridgeSettings[]).length > 0 &&
    !(settings.listeners as readonly Transport[]).includes('tcp')
  ) {
    throw new ConfigError(
      'bridges',
      'need the "tcp" listener: a bridge connects to this broker through it on loopback',
    );
  }
  return settings as unknown as MqttSettings;
}

const BINDING_KEYS = new Set(['filter', 'topic', 'partitions', 'retained']);

/** `[[mqtt.bindings]]`: an array of tables, each a filter and a stored topic. */
function parseBindings(value: unknown): readonly BindingSettings[] {
  if (!Array.isArray(value))
    throw new ConfigError('bindings', 'must be an array of tables ([[mqtt.bindings]])');
  return value.map((entry: unknown, index) => {
    const at = `bindings[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new ConfigError(at, 'must be a table with filter and topic');
    }
    const table = entry as Record<string, unknown>;
    for (const key of Object.keys(table)) {
      if (!BINDING_KEYS.has(key)) throw new ConfigError(`${at}.${key}`, 'unknown setting');
    }
    const { filter, topic, partitions = 1, retained = false } = table;
    if (typeof filter !== 'string') throw new ConfigError(`${at}.filter`, 'must be an MQTT topic filter');
    const parsed = parseFilter(filter, Number.MAX_SAFE_INTEGER);
    if (typeof parsed === 'string') throw new ConfigError(`${at}.filter`, parsed);
    if (parsed.kind !== 'plain') {
      throw new ConfigError(`${at}.filter`, 'must be a plain filter, not a shared or exclusive subscription');
    }
    if (typeof topic !== 'string') throw new ConfigError(`${at}.topic`, 'must be a stored topic name');
    try {
      validateTopicName(topic);
    } catch (error) {
      throw new ConfigError(`${at}.topic`, (error as Error).message);
    }
    if (
      typeof partitions !== 'number' ||
      !Number.isInteger(partitions) ||
      partitions < 1 ||
      partitions > 100_000
    ) {
      throw new ConfigError(`${at}.partitions`, 'must be an integer from 1 to 100000');
    }
    if (typeof retained !== 'boolean') throw new ConfigError(`${at}.retained`, 'must be true or false');
    return { filter, topic, partitions, retained };
  });
}

function parseListeners(value: unknown): readonly Transport[] {
  const valid =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((t) => TRANSPORTS.includes(t as Transport)) &&
    new Set(value).size === value.length;
  if (!valid) {
    throw new ConfigError('listeners', 'must list one or more of "tcp", "tls", "ws", "wss", each once');
  }
  return value as Transport[];
}

/** The certificate goes with the key, and with a listener that uses them: nothing is set in vain. */
function parseTls(
  files: Partial<Record<(typeof FILES)[number], string>>,
  listeners: readonly Transport[],
): MqttSettings['tls'] {
  const secure = listeners.filter((t) => t === 'tls' || t === 'wss');
  const { tls_cert: cert, tls_key: key, tls_ca: ca } = files;
  if (cert === undefined && key === undefined) {
    if (ca !== undefined) throw new ConfigError('tls_ca', 'needs tls_cert and tls_key');
    if (secure.length > 0) {
      throw new ConfigError('listeners', `"${secure[0]}" needs tls_cert and tls_key`);
    }
    return undefined;
  }
  if (key === undefined) throw new ConfigError('tls_key', 'must be set with tls_cert');
  if (cert === undefined) throw new ConfigError('tls_cert', 'must be set with tls_key');
  if (secure.length === 0) {
    throw new ConfigError('tls_cert', 'is set but listeners has neither "tls" nor "wss"');
  }
  return { cert, key, ...(ca === undefined ? {} : { ca }) };
}

const BRIDGE_KEYS = new Set([
  'name',
  'address',
  'topics',
  'remote_client_id',
  'remote_username',
  'remote_password',
  'clean_start',
  'keepalive_seconds',
  'protocol_version',
  'ca_file',
  'cert_file',
  'key_file',
  'insecure',
  'local_username',
  'local_password',
  'restart_seconds',
  'notifications',
]);
const TOPIC_KEYS = new Set(['pattern', 'direction', 'qos', 'local_prefix', 'remote_prefix']);
const DIRECTIONS: readonly string[] = ['in', 'out', 'both'];

/** `[[mqtt.bridges]]`: an array of tables, each a remote broker and the topics carried. */
function parseBridges(value: unknown): readonly BridgeSettings[] {
  if (!Array.isArray(value))
    throw new ConfigError('bridges', 'must be an array of tables ([[mqtt.bridges]])');
  const names = new Set<string>();
  return value.map((entry: unknown, index) => {
    const at = `bridges[${index}]`;
    const table = asTable(entry, at, 'must be a table with name, address and topics');
    for (const key of Object.keys(table)) {
      if (!BRIDGE_KEYS.has(key)) throw new ConfigError(`${at}.${key}`, 'unknown setting');
    }
    const { name } = table;
    if (typeof name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(name)) {
      throw new ConfigError(`${at}.name`, 'must be a non-empty name of letters, digits, ".", "_" and "-"');
    }
    if (names.has(name)) throw new ConfigError(`${at}.name`, `"${name}" names another bridge already`);
    names.add(name);
    const url = parseAddress(table.address, `${at}.address`);
    if (!Array.isArray(table.topics) || table.topics.length === 0) {
      throw new ConfigError(`${at}.topics`, 'must list one or more tables with pattern, direction and qos');
    }
    const topics = table.topics.map((topic: unknown, i) => parseBridgeTopic(topic, `${at}.topics[${i}]`));
    const text = (key: string) => optionalString(table[key], `${at}.${key}`);
    const flag = (key: string, fallback: boolean) => {
      const v = table[key] ?? fallback;
      if (typeof v !== 'boolean') throw new ConfigError(`${at}.${key}`, 'must be true or false');
      return v;
    };
    const integer = (key: string, min: number, max: number, fallback: number) => {
      const v = table[key] ?? fallback;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw new ConfigError(`${at}.${key}`, `must be an integer from ${min} to ${max}`);
      }
      return v;
    };
    const version = table.protocol_version ?? 5;
    if (version !== 5 && version !== '5' && version !== '3.1.1') {
      throw new ConfigError(`${at}.protocol_version`, 'must be "3.1.1" or 5');
    }
    const caFile = text('ca_file');
    const certFile = text('cert_file');
    const keyFile = text('key_file');
    if ((certFile === undefined) !== (keyFile === undefined)) {
      throw new ConfigError(
        `${at}.${certFile === undefined ? 'cert_file' : 'key_file'}`,
        'must be set with the other of cert_file and key_file',
      );
    }
    const secure = url.startsWith('mqtts:') || caFile !== undefined;
    const insecure = flag('insecure', false);
    if (!secure && (certFile !== undefined || table.insecure !== undefined)) {
      throw new ConfigError(
        `${at}.${certFile !== undefined ? 'cert_file' : 'insecure'}`,
        'needs TLS: an mqtts:// address or ca_file',
      );
    }
    const remoteUsername = text('remote_username');
    const remotePassword = text('remote_password');
    if (remotePassword !== undefined && remoteUsername === undefined) {
      throw new ConfigError(`${at}.remote_password`, 'needs remote_username');
    }
    const localUsername = text('local_username');
    const localPassword = text('local_password');
    if (localPassword !== undefined && localUsername === undefined) {
      throw new ConfigError(`${at}.local_password`, 'needs local_username');
    }
    const remoteClientId = text('remote_client_id') ?? `${hostname()}.${name}`;
    if (remoteClientId.length === 0) throw new ConfigError(`${at}.remote_client_id`, 'must not be empty');
    return {
      name,
      url: secure ? url.replace(/^mqtt:/, 'mqtts:') : url,
      topics,
      remoteClientId,
      remoteUsername,
      remotePassword,
      cleanStart: flag('clean_start', false),
      keepaliveSeconds: integer('keepalive_seconds', 5, 65_535, 60),
      protocolVersion: version === 5 || version === '5' ? 5 : 4,
      tls: secure
        ? {
            ...(caFile === undefined ? {} : { caFile }),
            ...(certFile === undefined ? {} : { certFile }),
            ...(keyFile === undefined ? {} : { keyFile }),
            insecure,
          }
        : undefined,
      localUsername,
      localPassword,
      restartSeconds: integer('restart_seconds', 1, 3600, 5),
      notifications: flag('notifications', true),
    };
  });
}

function asTable(entry: unknown, at: string, message: string): Record<string, unknown> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(at, message);
  return entry as Record<string, unknown>;
}

function optionalString(value: unknown, at: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ConfigError(at, 'must be a string');
  return value;
}

/** `host:port` (port 1883 when left out), `[ipv6]:port`, or an `mqtt://` / `mqtts://` URL. */
function parseAddress(value: unknown, at: string): string {
  const message = 'must be "host:port" or an mqtt:// or mqtts:// URL';
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(at, message);
  const withScheme = /^[a-z]+:\/\//i.test(value) ? value : `mqtt://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConfigError(at, message);
  }
  const plain = url.pathname === '' || url.pathname === '/';
  if (
    (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') ||
    url.hostname === '' ||
    !plain ||
    url.search ||
    url.username
  ) {
    throw new ConfigError(at, message);
  }
  const port = url.port === '' ? (url.protocol === 'mqtts:' ? 8883 : 1883) : Number(url.port);
  return `${url.protocol}//${url.hostname}:${port}`;
}

function parseBridgeTopic(entry: unknown, at: string): BridgeTopic {
  const table = asTable(entry, at, 'must be a table with pattern, direction and qos');
  for (const key of Object.keys(table)) {
    if (!TOPIC_KEYS.has(key)) throw new ConfigError(`${at}.${key}`, 'unknown setting');
  }
  const { pattern, direction = 'out', qos = 0 } = table;
  if (typeof direction !== 'string' || !DIRECTIONS.includes(direction)) {
    throw new ConfigError(`${at}.direction`, 'must be "in", "out" or "both"');
  }
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new ConfigError(`${at}.qos`, 'must be 0, 1 or 2');
  const localPrefix = optionalString(table.local_prefix, `${at}.local_prefix`) ?? '';
  const remotePrefix = optionalString(table.remote_prefix, `${at}.remote_prefix`) ?? '';
  for (const [key, prefix] of [
    ['local_prefix', localPrefix],
    ['remote_prefix', remotePrefix],
  ] as const) {
    if (/[+#]/.test(prefix)) throw new ConfigError(`${at}.${key}`, 'must not hold wildcards');
  }
  if (typeof pattern !== 'string' || pattern.length === 0) {
    throw new ConfigError(`${at}.pattern`, 'must be an MQTT topic filter');
  }
  for (const filter of [localPrefix + pattern, remotePrefix + pattern]) {
    const parsed = parseFilter(filter, Number.MAX_SAFE_INTEGER);
    if (typeof parsed === 'string') throw new ConfigError(`${at}.pattern`, `"${filter}": ${parsed}`);
    if (parsed.kind !== 'plain') {
      throw new ConfigError(
        `${at}.pattern`,
        'must be a plain filter, not a shared or exclusive subscription',
      );
    }
  }
  return { pattern, direction: direction as BridgeDirection, qos, localPrefix, remotePrefix };
}
