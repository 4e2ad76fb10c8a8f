import { readFile } from 'node:fs/promises';
import {
  ConfigError,
  rendezvousOwner,
  topicMatchesFilter,
  type BrokerCluster,
  type Counter,
  type Gauge,
  type ListenerAddress,
  type Logger,
  type Metrics,
} from '@robustmq/core';
import mqtt, {
  type IClientOptions,
  type IClientPublishOptions,
  type IClientSubscribeOptions,
  type IPublishPacket,
  type MqttClient,
  type Packet,
} from 'mqtt';
import type { BridgeSettings, BridgeTopic } from './config.js';

/** What the bridges need from the plugin. */
export interface BridgeHost {
  logger: Logger;
  metrics: Metrics;
  /** Publishes `$SYS/broker/<name>` retained on this broker. */
  setSys(name: string, value: string): void;
  /** Removes the retained `$SYS/broker/<name>` of this broker. */
  clearSys(name: string): void;
}

/**
 * What a broker announces to the cluster for each bridge it has configured, followed by the
 * bridge's name: one name each, since the cluster tells of brokers announcing or withdrawing a
 * name, not of a changed value.
 */
const CONFIGURED = 'mqtt-bridge:';
/** Announced by the broker running a bridge, until it has stopped it. */
const RUNNING = 'mqtt-bridge-running:';

/** Session expiry asked for by the bridge's persistent sessions: never (as MQTT 3.1.1's clean session 0). */
const NEVER = 0xffff_ffff;
/** A refused connection attempt is logged at once after a success, then at most this often. */
const REFUSED_LOG_MS = 60_000;
/** MQTT 5 DISCONNECT reason: another connection took the session over. */
const SESSION_TAKEN_OVER = 0x8e;
/** How long stopping waits for each client's DISCONNECT to go out. */
const END_TIMEOUT_MS = 2000;

/** The message properties carried from one broker to the other (not aliases or subscription ids). */
const CARRIED = [
  'payloadFormatIndicator',
  'messageExpiryInterval',
  'contentType',
  'responseTopic',
  'correlationData',
  'userProperties',
] as const;

/**
 * The `[[mqtt.bridges]]` of this broker, placed once its TCP listener is bound: in a cluster each
 * bridge runs on one broker at a time ({@link BridgePlacement}).
 */
export class MqttBridges {
  private readonly running = new Map<string, Bridge>();
  private placement: BridgePlacement | null = null;

  constructor(
    private readonly settings: readonly BridgeSettings[],
    private readonly host: BridgeHost,
    private readonly cluster: BrokerCluster,
  ) {}

  /**
   * Runs, through `listener`, the bridges this broker is given, now and at each change of the
   * cluster; returns without waiting for their connections. Throws a ConfigError for a TLS file
   * that cannot be read, on every broker: any of them may be given the bridge.
   */
  async start(listener: ListenerAddress): Promise<void> {
    if (this.settings.length === 0) return;
    const tls = await Promise.all(this.settings.map((settings) => readTlsFiles(settings)));
    const metrics = {
      carried: this.host.metrics.counter({
        name: 'robustmq_mqtt_bridge_messages_total',
        help: 'Messages carried by MQTT bridges, by bridge and direction (in: from the remote broker)',
        labelNames: ['bridge', 'direction'],
      }),
      connected: this.host.metrics.gauge({
        name: 'robustmq_mqtt_bridge_connected',
        help: 'Whether each MQTT bridge is connected to its remote broker (1) or not (0)',
        labelNames: ['bridge'],
      }),
    };
    const local = { host: loopback(listener.host), port: listener.port };
    const byName = new Map(this.settings.map((settings, i) => [settings.name, { settings, tls: tls[i]! }]));
    this.placement = new BridgePlacement(
      this.cluster,
      [...byName.keys()],
      {
        start: (name) => {
          const { settings, tls } = byName.get(name)!;
          this.running.set(name, new Bridge(settings, tls, local, this.host, metrics));
        },
        stop: async (name) => {
          const bridge = this.running.get(name);
          this.running.delete(name);
          await bridge?.stop();
          // Its state is the new owner's to tell, on that broker.
          if (byName.get(name)!.settings.notifications) this.host.clearSys(stateTopic(name));
        },
      },
      this.host.logger,
    );
    this.placement.start();
  }

  /** Stops the bridges running here, then tells the cluster, so that other brokers take them. */
  async stop(): Promise<void> {
    await this.placement?.stop();
    this.placement = null;
  }
}

/** Starts and stops the bridge of a name on this broker. */
export interface BridgeRunner {
  start(name: string): void;
  /** Resolves once the bridge's clients are disconnected. */
  stop(name: string): Promise<void>;
}

/**
 * Where each bridge runs: on one live broker of the cluster at a time, so that the brokers of a
 * cluster, usually with one config file, do not take the bridge's sessions (here and on the
 * remote) from each other. Each broker announces the bridges it has configured; the owner of a
 * bridge is chosen by rendezvous hashing among the live brokers that announced it, so brokers with
 * different configs agree, and a broker joining or leaving moves only the bridges it gains or held.
 * A broker that has not joined the cluster (or is cut off from it) runs none. A broker that takes
 * a bridge from another live broker (joining, say) starts it once that one has stopped it.
 */
export class BridgePlacement {
  private readonly running = new Set<string>();
  /** Bridges this broker owns and waits to start until the broker still running them stops them. */
  private readonly waiting = new Set<string>();
  /** Changes are applied one after the other: a bridge is stopped before it is started again. */
  private placing: Promise<void> = Promise.resolve();
  private stopChanges: () => void = () => {};
  private stopped = false;

  constructor(
    private readonly cluster: BrokerCluster,
    private readonly names: readonly string[],
    private readonly runner: BridgeRunner,
    private readonly logger: Logger,
  ) {}

  start(): void {
    for (const name of this.names) this.cluster.announce(CONFIGURED + name, {});
    this.stopChanges = this.cluster.onChange(() => void this.place());
    // A broker alone (no cluster) is never told of a change.
    void this.place();
  }

  /** Stops every bridge running here, then withdraws them from the cluster. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopChanges();
    await this.place();
    for (const name of this.names) this.cluster.announce(CONFIGURED + name, undefined);
  }

  /** The broker that runs bridge `name`, as this one sees the cluster; null when none. */
  owner(name: string): number | null {
    return rendezvousOwner(`bridge:${name}`, this.cluster.brokers(CONFIGURED + name));
  }

  /** Starts the bridges this broker now owns and stops those it no longer does. */
  private place(): Promise<void> {
    this.placing = this.placing.then(async () => {
      const leaving: Array<Promise<void>> = [];
      for (const name of this.names) {
        const owner = this.stopped ? null : this.owner(name);
        const owned = owner === this.cluster.nodeId;
        if (owned === this.running.has(name)) continue;
        if (owned) {
          // A broker that ran it until now stops it when it sees this one: both running it would
          // take the bridge's sessions from each other. A broker that left runs nothing.
          const elsewhere = this.cluster.peers(RUNNING + name);
          if (elsewhere.length > 0) {
            if (!this.waiting.has(name)) {
              this.waiting.add(name);
              this.logger.info(
                { bridge: name, runningOn: elsewhere },
                'the bridge starts here once stopped there',
              );
            }
            continue;
          }
          this.waiting.delete(name);
          this.running.add(name);
          this.cluster.announce(RUNNING + name, {});
          this.logger.info({ bridge: name, owner }, 'this broker runs the bridge');
          this.runner.start(name);
        } else {
          this.running.delete(name);
          this.logger.info({ bridge: name, owner }, 'this broker no longer runs the bridge');
          leaving.push(
            this.runner
              .stop(name)
              .catch((error: unknown) => {
                this.logger.warn({ bridge: name, err: error }, 'bridge did not stop cleanly');
              })
              .then(() => this.cluster.announce(RUNNING + name, undefined)),
          );
        }
      }
      await Promise.all(leaving);
    });
    return this.placing;
  }
}

/** The `$SYS/broker/...` name of a bridge's connection state. */
function stateTopic(name: string): string {
  return `connection/${name}/state`;
}

/** The address to reach a listener bound to every interface through. */
function loopback(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

async function readTlsFiles(settings: BridgeSettings): Promise<Partial<IClientOptions>> {
  if (!settings.tls) return {};
  const { caFile, certFile, keyFile, insecure } = settings.tls;
  const read = async (path: string | undefined, key: string) => {
    if (path === undefined) return {};
    try {
      return { [key]: await readFile(path) };
    } catch (error) {
      const setting = `bridges.${settings.name}.${key === 'ca' ? 'ca_file' : `${key}_file`}`;
      throw new ConfigError(setting, `cannot be read: ${(error as Error).message}`);
    }
  };
  return {
    ...(await read(caFile, 'ca')),
    ...(await read(certFile, 'cert')),
    ...(await read(keyFile, 'key')),
    rejectUnauthorized: !insecure,
  };
}

/** `restartSeconds` give or take half of it, so that bridges cut off together do not retry together. */
function jittered(seconds: number): number {
  return Math.round(seconds * 1000 * (0.5 + Math.random()));
}

type Side = 'local' | 'remote';

/**
 * One bridge: an MQTT.js client to the remote broker and one to this broker's TCP listener on
 * loopback, each with a persistent session. A message received on one side is published on the
 * other, and acknowledged where it came from only once the other side acknowledged it: while a
 * side is down, what it should get waits, unacknowledged, in the other side's session.
 */
class Bridge {
  private readonly remote: MqttClient;
  private readonly local: MqttClient;
  private readonly logger: Logger;
  private readonly address: string;
  private readonly carried: Counter;
  private readonly connected: Gauge;
  private stopping = false;

  constructor(
    private readonly settings: BridgeSettings,
    tls: Partial<IClientOptions>,
    local: { host: string; port: number },
    private readonly host: BridgeHost,
    metrics: { carried: Counter; connected: Gauge },
  ) {
    this.carried = metrics.carried;
    this.connected = metrics.connected;
    this.logger = host.logger.child({ bridge: settings.name });
    const url = new URL(settings.url);
    this.address = `${url.hostname}:${url.port}`;
    this.connected.set({ bridge: settings.name }, 0);
    this.notify('0');
    const common: IClientOptions = {
      clean: false,
      reconnectPeriod: jittered(settings.restartSeconds),
      // Wrong credentials are retried too: they may be fixed on the other side.
      reconnectOnConnackError: true,
      // Subscriptions are made on every connect (below), also when the session was kept.
      resubscribe: false,
      // QoS 0 messages for a side that is down are dropped, as a broker does for an offline client.
      queueQoSZero: false,
      connectTimeout: 10_000,
    };
    this.remote = mqtt.connect(settings.url, {
      ...common,
      ...tls,
      clientId: settings.remoteClientId,
      clean: settings.cleanStart,
      protocolVersion: settings.protocolVersion,
      keepalive: settings.keepaliveSeconds,
      ...(settings.protocolVersion === 5
        ? { properties: { sessionExpiryInterval: settings.cleanStart ? 0 : NEVER } }
        : {}),
      ...(settings.remoteUsername === undefined ? {} : { username: settings.remoteUsername }),
      ...(settings.remotePassword === undefined ? {} : { password: settings.remotePassword }),
    });
    this.local = mqtt.connect({
      ...common,
      protocol: 'mqtt',
      host: local.host,
      port: local.port,
      clientId: `robustmq-bridge-${settings.name}`,
      protocolVersion: 5,
      keepalive: 60,
      properties: { sessionExpiryInterval: NEVER },
      ...(settings.localUsername === undefined ? {} : { username: settings.localUsername }),
      ...(settings.localPassword === undefined ? {} : { password: settings.localPassword }),
    });
    const remoteAcks = new HeldAcks(this.remote);
    const localAcks = new HeldAcks(this.local);
    this.watch('remote', this.remote);
    this.watch('local', this.local);
    this.remote.on('packetreceive', (packet) => {
      if (packet.cmd === 'publish') this.carry(packet, 'in', remoteAcks, this.local);
    });
    this.local.on('packetreceive', (packet) => {
      if (packet.cmd === 'publish') this.carry(packet, 'out', localAcks, this.remote);
    });
  }

  /** Logs a side's connections, disconnections and refusals; subscribes at each connect. */
  private watch(side: Side, client: MqttClient): void {
    const where = side === 'remote' ? this.address : 'this broker';
    let up = false;
    let lastError: string | null = null;
    let refusedLoggedAt = 0;
    let refusedSince = 0;
    client.on('connect', (connack) => {
      up = true;
      refusedLoggedAt = 0;
      refusedSince = 0;
      lastError = null;
      this.logger.info({ side, address: where, sessionPresent: connack.sessionPresent }, 'bridge connected');
      this.subscribe(side, client);
      if (side === 'remote') {
        this.connected.set({ bridge: this.settings.name }, 1);
        this.notify('1');
      }
    });
    client.on('reconnect', () => {
      client.options.reconnectPeriod = jittered(this.settings.restartSeconds);
    });
    client.on('disconnect', (packet) => {
      const code = packet.reasonCode ?? 0;
      lastError =
        code === SESSION_TAKEN_OVER
          ? 'another client connected with the same client id (the same client id used by another bridge?)'
          : `disconnected by the broker (reason code 0x${code.toString(16)})`;
    });
    client.on('error', (error: Error & { code?: unknown }) => {
      if (up || this.stopping) {
        lastError = error.message;
        return;
      }
      // Not connected: a refused or failed attempt, logged once then at most once a minute.
      refusedSince++;
      const now = Date.now();
      if (now - refusedLoggedAt < REFUSED_LOG_MS) return;
      refusedLoggedAt = now;
      this.logger.warn(
        { side, address: where, reason: error.message, attempts: refusedSince },
        'bridge cannot connect; retrying',
      );
      refusedSince = 0;
    });
    client.on('close', () => {
      if (!up) return;
      up = false;
      if (side === 'remote') {
        this.connected.set({ bridge: this.settings.name }, 0);
        // Stopped here, the bridge goes on elsewhere (or the broker stops): no "0" to tell.
        if (!this.stopping) this.notify('0');
      }
      if (this.stopping) return;
      this.logger.warn(
        { side, address: where, reason: lastError ?? 'connection closed' },
        'bridge disconnected; retrying',
      );
    });
  }

  /** Subscribes a side to the topics it passes on, each at the rule's QoS. */
  private subscribe(side: Side, client: MqttClient): void {
    const passes = side === 'local' ? 'out' : 'in';
    const v5 = side === 'local' || this.settings.protocolVersion === 5;
    const filters: Record<string, IClientSubscribeOptions> = {};
    for (const rule of this.settings.topics) {
      if (rule.direction !== passes && rule.direction !== 'both') continue;
      const filter = (side === 'local' ? rule.localPrefix : rule.remotePrefix) + rule.pattern;
      // No Local: what the bridge publishes on a side does not come back to it (loops with
      // "both"); Retain As Published carries the retained flag; Retain Handling 1 sends retained
      // messages at the first subscription only, not at every reconnect.
      filters[filter] = v5 ? { qos: rule.qos, nl: true, rap: true, rh: 1 } : { qos: rule.qos };
    }
    if (Object.keys(filters).length === 0) return;
    client.subscribe(filters, (error, granted) => {
      if (error) {
        if (!this.stopping) this.logger.warn({ side, err: error }, 'bridge subscription failed');
        return;
      }
      for (const grant of granted ?? []) {
        if (grant.qos > 2) {
          this.logger.warn(
            { side, filter: grant.topic, reasonCode: grant.qos },
            'bridge subscription refused',
          );
        }
      }
    });
  }

  /**
   * Publishes on the other side a message received on one: at the lower of its QoS and the
   * rule's, with its retained flag and properties, acknowledged once the other side did.
   */
  private carry(packet: IPublishPacket, direction: 'in' | 'out', acks: HeldAcks, to: MqttClient): void {
    const rule = this.ruleFor(packet.topic, direction);
    if (!rule) return;
    const [from, onto] =
      direction === 'in' ? [rule.remotePrefix, rule.localPrefix] : [rule.localPrefix, rule.remotePrefix];
    const topic = onto + packet.topic.slice(from.length);
    const qos = Math.min(packet.qos, rule.qos) as 0 | 1 | 2;
    const held = packet.qos > 0 && packet.messageId !== undefined ? acks.hold(packet.messageId) : null;
    if (held === false) return;
    const toV5 = direction === 'out' ? this.settings.protocolVersion === 5 : true;
    const options: IClientPublishOptions = { qos, retain: packet.retain };
    if (toV5 && packet.properties) {
      const properties: Record<string, unknown> = {};
      for (const key of CARRIED) {
        if (packet.properties[key] !== undefined) properties[key] = packet.properties[key];
      }
      options.properties = properties;
    }
    to.publish(topic, packet.payload, options, (error) => {
      const code = (error as { code?: unknown } | undefined)?.code;
      if (error && typeof code !== 'number') {
        // Not sent (the bridge stops): unacknowledged, the message comes again after a reconnect.
        if (held) acks.forget(held);
        return;
      }
      if (error) {
        // Refused by the other broker (not authorized, say): acknowledged anyway, as a broker
        // drops a message it cannot deliver, so that it does not hold a place in flight forever.
        this.logger.warn({ topic, direction, reason: error.message }, 'bridged message refused');
      } else {
        this.carried.inc({ bridge: this.settings.name, direction });
      }
      if (held) acks.release(held);
    });
  }

  /** The first rule passing `topic` (as named on the side it came from) in `direction`. */
  private ruleFor(topic: string, direction: 'in' | 'out'): BridgeTopic | undefined {
    return this.settings.topics.find(
      (rule) =>
        (rule.direction === direction || rule.direction === 'both') &&
        topicMatchesFilter((direction === 'in' ? rule.remotePrefix : rule.localPrefix) + rule.pattern, topic),
    );
  }

  private notify(value: '0' | '1'): void {
    if (this.settings.notifications) this.host.setSys(stateTopic(this.settings.name), value);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([this.remote, this.local].map((client) => end(client)));
  }
}

/** Ends a client with a DISCONNECT, or at once when that does not go out in time. */
async function end(client: MqttClient): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      client.end(true);
      resolve();
    }, END_TIMEOUT_MS);
  });
  await Promise.race([client.endAsync().catch(() => {}), late]);
  clearTimeout(timer);
}

type SendPacket = (packet: Packet, callback?: (error?: Error) => void, ...rest: unknown[]) => void;

/** A message whose acknowledgement is held, on the connection it came on. */
interface Held {
  readonly messageId: number;
  readonly connection: number;
}

/**
 * Holds the PUBACK or PUBREC MQTT.js sends for a received message until the message was carried.
 * MQTT.js sends it once its handlers (`handleMessage`, `customHandleAcks`) return, and handles
 * one packet at a time: waiting inside them would stall the connection (its PINGRESPs, the
 * acknowledgements of what the bridge publishes), and with traffic both ways deadlock the two
 * connections on each other. MQTT.js has no public way to acknowledge later, so its
 * `_sendPacket` is wrapped, the dependency is pinned to one version, and a test covers it.
 */
class HeldAcks {
  /** By message id: still being carried, carried before MQTT.js acknowledged, or the held send. */
  private readonly held = new Map<number, 'carrying' | 'carried' | (() => void)>();
  /** Counts connections: an acknowledgement held on a closed one is not sent on the next. */
  private connection = 0;

  constructor(client: MqttClient) {
    const patched = client as unknown as { _sendPacket: SendPacket };
    const send = patched._sendPacket.bind(client);
    patched._sendPacket = (packet, callback, ...rest) => {
      const id = (packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.messageId;
      const state = id ? this.held.get(id) : undefined;
      if (!id || state === undefined || typeof state === 'function') {
        send(packet, callback, ...rest);
      } else if (state === 'carried') {
        this.held.delete(id);
        send(packet, callback, ...rest);
      } else {
        this.held.set(id, () => send(packet));
        callback?.();
      }
    };
    client.on('close', () => {
      this.connection++;
      this.held.clear();
    });
  }

  /** Starts holding the acknowledgement of `messageId`; false when it is held already (a resend). */
  hold(messageId: number): Held | false {
    if (this.held.has(messageId)) return false;
    this.held.set(messageId, 'carrying');
    return { messageId, connection: this.connection };
  }

  /** The message was carried: its acknowledgement goes out (now, or when MQTT.js sends it). */
  release({ messageId, connection }: Held): void {
    if (connection !== this.connection) return;
    const state = this.held.get(messageId);
    if (typeof state === 'function') {
      this.held.delete(messageId);
      state();
    } else if (state === 'carrying') this.held.set(messageId, 'carried');
  }

  /** The message was not carried: never acknowledged on this connection. */
  forget({ messageId, connection }: Held): void {
    if (connection === this.connection) this.held.delete(messageId);
  }
}
