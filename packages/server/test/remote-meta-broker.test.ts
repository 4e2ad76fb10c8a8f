import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, startServer, tempDir, type ServerProcess } from './helpers/server-process.js';

/** Just enough MQTT 3.1.1 to open a persistent session, subscribe and read the answers. */
class TinyMqttClient {
  private buffered = Buffer.alloc(0);
  private waiting: (() => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, data]);
      this.waiting?.();
    });
  }

  static async connect(port: number): Promise<TinyMqttClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new TinyMqttClient(socket);
  }

  /** CONNECT without clean session; resolves with CONNACK's session-present flag. */
  async open(clientId: string): Promise<boolean> {
    const id = Buffer.from(clientId);
    const body = Buffer.concat([
      Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 60]),
      Buffer.from([id.length >> 8, id.length & 0xff]),
      id,
    ]);
    this.send(0x10, body);
    const connack = await this.packet();
    expect(connack[0]).toBe(0x20);
    expect(connack[3]).toBe(0); // accepted
    return (connack[2]! & 1) === 1;
  }

  async subscribe(filter: string): Promise<void> {
    const topic = Buffer.from(filter);
    this.send(
      0x82,
      Buffer.concat([Buffer.from([0, 1, topic.length >> 8, topic.length & 0xff]), topic, Buffer.from([1])]),
    );
    const suback = await this.packet();
    expect(suback[0]).toBe(0x90);
    expect(suback.at(-1)).toBe(1); // granted QoS 1
  }

  async close(): Promise<void> {
    this.send(0xe0, Buffer.alloc(0));
    this.socket.end();
    await new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
  }

  private send(type: number, body: Buffer): void {
    expect(body.length).toBeLessThan(128); // one length byte
    this.socket.write(Buffer.concat([Buffer.from([type, body.length]), body]));
  }

  /** The next whole packet (short ones only: a one-byte remaining length). */
  private async packet(): Promise<Buffer> {
    while (this.buffered.length < 2 || this.buffered.length < 2 + this.buffered[1]!) {
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
    const packet = this.buffered.subarray(0, 2 + this.buffered[1]!);
    this.buffered = this.buffered.subarray(packet.length);
    return packet;
  }
}

/**
 * Three meta nodes (roles meta, journal) and brokers without the meta role keeping their meta data
 * on them through the remote meta client: a broker-only node (storage on node 1's journal) and a
 * broker with the journal role (storage of its own).
 */
describe('a broker without the meta role', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('stores MQTT sessions on the meta nodes, where a fresh broker finds them', async () => {
    const dir = tempDir('remote-meta');
    cleanups.push(dir.remove);
    const rpcPorts = await freePorts(4);
    const metaNodes = `[${rpcPorts
      .slice(0, 3)
      .map((port, i) => `"${i + 1}@127.0.0.1:${port}"`)
      .join(', ')}]`;
    const common = ['bind = "127.0.0.1"', '[log]', 'format = "json"', '[http]', 'port = 0'];
    const cluster = ['[cluster]', `meta_nodes = ${metaNodes}`, 'tick_ms = 50'];
    for (const id of [1, 2, 3]) {
      writeFileSync(
        join(dir.path, `meta-${id}.toml`),
        [
          `node_id = ${id}`,
          'roles = ["meta", "journal"]',
          `data_dir = "meta-${id}"`,
          ...common,
          ...cluster,
          '[rpc]',
          `port = ${rpcPorts[id - 1]}`,
        ].join('\n') + '\n',
      );
    }
    /** A broker-only node storing on node 1's journal, or (`journal`) a broker with its own. */
    const brokerConfig = (dataDir: string, journal = false): string => {
      const path = join(dir.path, `${dataDir}.toml`);
      const storage = journal
        ? ['[rpc]', `port = ${rpcPorts[3]}`]
        : ['[storage]', 'engine = "@robustmq/journal/remote"', `address = "127.0.0.1:${rpcPorts[0]}"`];
      writeFileSync(
        path,
        [
          `node_id = ${journal ? 5 : 4}`,
          `roles = [${journal ? '"broker", "journal"' : '"broker"'}]`,
          `data_dir = "${dataDir}"`,
          'protocols = ["@robustmq/protocol-mqtt"]',
          ...common,
          ...cluster,
          ...storage,
          '[mqtt]',
          'port = 0',
        ].join('\n') + '\n',
      );
      return path;
    };
    const start = async (config: string): Promise<ServerProcess> => {
      const server = await startServer({ args: ['--config', config], cwd: dir.path });
      cleanups.push(() => server.stop('SIGKILL'));
      return server;
    };
    // Each meta node waits for a quorum before it is ready, so they start together.
    await Promise.all([1, 2, 3].map((id) => start(join(dir.path, `meta-${id}.toml`))));

    const first = await start(brokerConfig('broker-a'));
    const client = await TinyMqttClient.connect(first.port('mqtt/tcp'));
    expect(await client.open('remote-meta-session')).toBe(false);
    await client.subscribe('orders/#');
    await client.close();
    expect(await first.stop('SIGTERM')).toBe(0);

    // A new broker with an empty data directory: the session can only come from the meta nodes.
    const second = await start(brokerConfig('broker-b'));
    const again = await TinyMqttClient.connect(second.port('mqtt/tcp'));
    expect(await again.open('remote-meta-session')).toBe(true);
    await again.close();

    // A broker with the journal role keeps its storage, but its sessions too go to the meta nodes.
    const withJournal = await start(brokerConfig('broker-journal-a', true));
    expect(withJournal.port('journal/rpc')).toBe(rpcPorts[3]);
    const third = await TinyMqttClient.connect(withJournal.port('mqtt/tcp'));
    expect(await third.open('remote-meta-session-2')).toBe(false);
    await third.subscribe('orders/#');
    await third.close();
    expect(await withJournal.stop('SIGTERM')).toBe(0);
    const restarted = await start(brokerConfig('broker-journal-b', true));
    const fourth = await TinyMqttClient.connect(restarted.port('mqtt/tcp'));
    expect(await fourth.open('remote-meta-session-2')).toBe(true);
    await fourth.close();
  }, 60_000);
});
