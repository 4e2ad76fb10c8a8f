import type { BrokerContext, ConnectionInfo, ListenerSpec, ProtocolPlugin } from '@robustmq/core';
import type { Duplex } from 'node:stream';
import { MqttBroker } from './broker.js';
import type { MqttSettings } from './config.js';
import { Connection } from './connection.js';

/** The MQTT protocol plugin: one TCP listener, one broker, a Connection per accepted socket. */
export class MqttPlugin implements ProtocolPlugin {
  private broker: MqttBroker | null = null;

  constructor(readonly settings: MqttSettings) {}

  listeners(): readonly ListenerSpec[] {
    return [
      {
        name: 'tcp',
        port: this.settings.port,
        transport: 'tcp',
        ...(this.settings.host === undefined ? {} : { host: this.settings.host }),
      },
    ];
  }

  async start(context: BrokerContext): Promise<void> {
    const broker = new MqttBroker(this.settings, context);
    await broker.recover();
    this.broker = broker;
  }

  accept(connection: Duplex, info: ConnectionInfo): void {
    if (!this.broker) {
      connection.destroy();
      return;
    }
    new Connection(this.broker, connection, info);
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    this.broker = null;
    await broker?.stop();
  }
}
