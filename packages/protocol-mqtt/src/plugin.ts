import type {
  AdminResource,
  BrokerContext,
  ConnectionInfo,
  ListenerAddress,
  ListenerSpec,
  ProtocolPlugin,
} from '@robustmq/core';
import { adminAcrossBrokers, ErrorCode, RobustMQError, soloCluster } from '@robustmq/core';
import { adminResources } from './admin.js';
import type { Duplex } from 'node:stream';
import { MqttBridges } from './bridges.js';
import { MqttBroker } from './broker.js';
import type { MqttSettings } from './config.js';
import { Connection } from './connection.js';
import { loadAuthMethods } from './enhanced-auth.js';

/** WebSocket subprotocols of MQTT: `mqtt` (3.1.1 and 5.0) and `mqttv3.1`. */
const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];

/** The MQTT protocol plugin: its listeners, one broker, a Connection per accepted stream. */
export class MqttPlugin implements ProtocolPlugin {
  private broker: MqttBroker | null = null;
  private bridges: MqttBridges | null = null;
  private admin: () => Readonly<Record<string, AdminResource>> = () => ({});

  constructor(readonly settings: MqttSettings) {}

  listeners(): readonly ListenerSpec[] {
    const { host, tls, wsPath, maxPacketSize } = this.settings;
    // A WebSocket message may hold several packets (MQTT 5 section 6.0): room for two whole ones.
    const web = { path: wsPath, subprotocols: SUBPROTOCOLS, maxMessageBytes: 2 * maxPacketSize };
    const ports = {
      tcp: this.settings.port,
      tls: this.settings.tlsPort,
      ws: this.settings.wsPort,
      wss: this.settings.wssPort,
    };
    return this.settings.listeners.map((transport) => ({
      name: transport,
      port: ports[transport],
      transport,
      ...(host === undefined ? {} : { host }),
      ...((transport === 'tls' || transport === 'wss') && tls ? { tls } : {}),
      ...(transport === 'ws' || transport === 'wss' ? web : {}),
    }));
  }

  async start(context: BrokerContext): Promise<void> {
    const methods = await loadAuthMethods(this.settings);
    const broker = new MqttBroker(this.settings, context);
    broker.authMethods = methods;
    await broker.recover();
    this.broker = broker;
    this.bridges = new MqttBridges(
      this.settings.bridges,
      {
        logger: broker.logger,
        metrics: context.metrics,
        setSys: (name, value) => broker.sys.set(name, value),
        clearSys: (name) => void broker.retained.delete(`$SYS/broker/${name}`),
      },
      context.cluster ?? soloCluster(context.nodeId),
    );
    const own = () => adminResources(broker);
    // In a cluster, clients, sessions and subscriptions are listed from every broker.
    this.admin = context.cluster
      ? adminAcrossBrokers(
          'mqtt',
          context.cluster,
          own,
          ['clients', 'sessions', 'subscriptions'],
          broker.logger,
        )
      : own;
  }

  /** `clients`, `sessions`, `subscriptions` and `retained` (see the README). */
  adminResources(): Readonly<Record<string, AdminResource>> {
    if (!this.broker) throw new RobustMQError(ErrorCode.Unavailable, 'the MQTT plugin is not started');
    return this.admin();
  }

  accept(connection: Duplex, info: ConnectionInfo): void {
    if (!this.broker) {
      connection.destroy();
      return;
    }
    new Connection(this.broker, connection, info);
  }

  /**
   * Starts the bridges this broker is given in the cluster: they reach it through its TCP listener
   * (config.ts requires one).
   */
  async listening(listeners: readonly ListenerAddress[]): Promise<void> {
    const tcp = listeners.find((listener) => listener.transport === 'tcp');
    if (tcp) await this.bridges?.start(tcp);
  }

  async stop(): Promise<void> {
    // First, so that the bridges' local sessions end with a DISCONNECT and keep what is queued.
    await this.bridges?.stop();
    this.bridges = null;
    const broker = this.broker;
    this.broker = null;
    await broker?.stop();
  }
}
