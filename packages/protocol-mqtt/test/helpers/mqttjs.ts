import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';

export type { MqttClient };

export interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

/** Connects MQTT.js to the broker without automatic reconnects. */
export function connectClient(port: number, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
}

/**
 * Connects with an inbox attached before CONNACK, so messages the broker sends right after it
 * (a resumed session's queue) are not missed; also returns the CONNACK.
 */
export function connectWithInbox(
  port: number,
  options: IClientOptions = {},
): Promise<{ client: MqttClient; inbox: Inbox; connack: IConnackPacket }> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
  const inbox = new Inbox(client);
  return new Promise((resolve, reject) => {
    client.once('connect', (connack) => resolve({ client, inbox, connack }));
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
  });
}

/** Collects a client's messages for awaiting them one by one. */
export class Inbox {
  readonly messages: Received[] = [];
  private waiters: Array<() => void> = [];

  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload: payload.toString(), packet });
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    });
  }

  /** Waits until `count` messages have arrived in total and returns them all. */
  async waitFor(count: number, timeoutMs = 5000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} messages, got ${this.messages.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.messages;
  }

  /** The next message after the `index`-th. */
  async at(index: number, timeoutMs = 5000): Promise<Received> {
    return (await this.waitFor(index + 1, timeoutMs))[index]!;
  }

  /** Waits `ms` and returns what arrived (to check that nothing more does). */
  async settle(ms = 300): Promise<Received[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.messages;
  }
}

/** Ends clients, ignoring those already gone. */
export async function endAll(clients: MqttClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
}
