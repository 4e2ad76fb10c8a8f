import type { Duplex } from 'node:stream';
import type { Authorizer } from './auth.js';
import type { BrokerCluster } from './cluster.js';
import type { Logger } from './logger.js';
import type { MetaStore } from './meta.js';
import type { Metrics } from './metrics.js';
import type { RecordCodec } from './records.js';
import type { Router } from './router.js';
import type { StorageEngine } from './storage.js';
import type { TopicCatalog } from './topic-catalog.js';

/** How clients reach a listener. `ws` and `wss` carry the protocol inside WebSocket binary frames. */
export type Transport = 'tcp' | 'tls' | 'ws' | 'wss';

/** A port a protocol wants opened. The server binds it, so port errors and health are uniform. */
export interface ListenerSpec {
  /** Unique within the plugin, e.g. `tcp`, `tls`, `ws`. Shown in logs, metrics and health. */
  name: string;
  port: number;
  /** Defaults to the server's bind address. */
  host?: string;
  transport: Transport;
  /** For `tls` and `wss`: PEM file paths. */
  tls?: { cert: string; key: string; ca?: string };
  /** For `ws` and `wss`: the HTTP path (e.g. `/mqtt`) and accepted WebSocket subprotocols. */
  path?: string;
  subprotocols?: readonly string[];
  /**
   * For `ws` and `wss`: the largest WebSocket message taken. A larger one is refused as soon as
   * its length is read (close code 1009), before any of it is buffered. Unset: 100 MiB.
   */
  maxMessageBytes?: number;
}

/** A listener as the server bound it: the real port when the spec asked for 0. */
export interface ListenerAddress {
  /** The {@link ListenerSpec.name} it was opened for. */
  name: string;
  transport: Transport;
  /** The address bound, e.g. `127.0.0.1`, or `0.0.0.0` / `::` for every interface. */
  host: string;
  port: number;
}

export interface ConnectionInfo {
  listener: string;
  transport: Transport;
  remoteAddress: string;
  remotePort: number;
}

/**
 * Everything a protocol sees of the node. A protocol never imports the server, storage engines or
 * other protocols; it reaches the cluster through this.
 */
export interface BrokerContext {
  readonly nodeId: number;
  /** The server's version, for protocols that report it (MQTT `$SYS/broker/version`). */
  readonly version: string;
  readonly router: Router;
  readonly storage: StorageEngine;
  /** The shared encoding of stored records, so protocols read what others wrote. */
  readonly records: RecordCodec;
  readonly meta: MetaStore;
  readonly auth: Authorizer;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /**
   * The brokers serving this node's storage with it. Absent means this broker serves alone (a
   * context built without a server, in tests).
   */
  readonly cluster?: BrokerCluster;
  /**
   * The node's topic catalog, shared by its protocols and its admin API so that creations,
   * changes and deletions of one topic through any of them run one at a time. Absent (a context
   * built without a server, in tests), a protocol makes its own.
   */
  readonly topics?: TopicCatalog;
}

/** A running protocol: the server hands it each accepted connection. */
export interface ProtocolPlugin {
  /** The ports to open; read after `start`. */
  listeners(): readonly ListenerSpec[];
  /** Prepares the protocol (loads state, subscribes); called once, before any connection. */
  start(context: BrokerContext): Promise<void>;
  /**
   * Takes over one client connection: a `net.Socket`, a `tls.TLSSocket` or a WebSocket stream.
   * The plugin owns it from here, including closing it.
   */
  accept(connection: Duplex, info: ConnectionInfo): void;
  /**
   * Told where its listeners were bound, once all of them are, before the node reports ready:
   * what a protocol advertises to other nodes (a Kafka broker to its peers) needs the real ports.
   */
  listening?(listeners: readonly ListenerAddress[]): Promise<void> | void;
  /**
   * Stops: listeners are already closed when this runs; the plugin finishes in-flight writes,
   * closes its connections and resolves.
   */
  stop(): Promise<void>;
  /**
   * The live objects this protocol shows operators (MQTT clients and sessions, Kafka consumer
   * groups, AMQP queues), keyed by resource name. The admin API serves each under
   * `/api/v1/<plugin>/<resource>`. Read after `start`.
   */
  adminResources?(): Readonly<Record<string, AdminResource>>;
}

/** One item of an {@link AdminResource}: plain JSON with a stable `id`. */
export type AdminItem = { readonly id: string } & Readonly<Record<string, unknown>>;

/** A page of items in a stable order; `next` is the `after` for the following page, or null. */
export interface AdminPage {
  items: readonly AdminItem[];
  next: string | null;
}

/**
 * A kind of live object an operator can list, inspect and act on. Errors are `RobustMQError`s:
 * `INVALID_ARGUMENT` for a bad body, `NOT_FOUND` for an unknown id.
 */
export interface AdminResource {
  /** Items after `after` (an id), at most `limit` of them. */
  list(page: { limit: number; after?: string }): Promise<AdminPage>;
  /** One item with its details, or null. */
  get(id: string): Promise<AdminItem | null>;
  /** Removes the item (kicks a client, deletes a session); false when it did not exist. */
  remove?(id: string): Promise<boolean>;
  /** Named operations on one item, e.g. Kafka `reset-offsets`; the result is returned as JSON. */
  actions?: Readonly<
    Record<string, (id: string, body: Readonly<Record<string, unknown>>) => Promise<unknown>>
  >;
}

/**
 * What a protocol package exports as its default export. The server loads it by package name
 * (`protocols = ["@robustmq/protocol-mqtt", "robustmq-protocol-foo"]`) and passes it the config
 * section named after it (`[mqtt]`, `[foo]`).
 */
export interface ProtocolPluginDefinition {
  /** Lower-case name: config section, log and metric label. */
  readonly name: string;
  /**
   * Builds the plugin from its config section. Throws a `ConfigError` naming the setting for an
   * unknown or invalid one.
   */
  create(config: Readonly<Record<string, unknown>>): ProtocolPlugin;
}

/** Identity helper that gives a plugin definition its type. */
export function definePlugin(definition: ProtocolPluginDefinition): ProtocolPluginDefinition {
  return definition;
}
