import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../src/codec/index.js';
import { connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';
import { packet, str } from './helpers/wire.js';

/**
 * An MQTT 5 client's Maximum Packet Size binds every packet the broker sends it (MQTT-3.1.2-24):
 * a Reason String, User Properties or Response Information that would exceed it are left out.
 */

let server: MqttServer;
const clients: MqttClient[] = [];
let seq = 0;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await endAll(clients);
  await server.stop();
});

function connect(maximumPacketSize: number | undefined, extra: Record<string, unknown> = {}): Packet {
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clientId: `mps-${++seq}`,
    clean: true,
    keepalive: 60,
    properties: { ...(maximumPacketSize === undefined ? {} : { maximumPacketSize }), ...extra },
  };
}

async function connected(maximumPacketSize?: number): Promise<RawClient> {
  const client = await RawClient.open(server.port, 5);
  client.send(connect(maximumPacketSize));
  expect(await client.next()).toMatchObject({ cmd: 'connack', reasonCode: 0 });
  return client;
}

describe("the client's Maximum Packet Size", () => {
  it('DISCONNECT leaves its reason string out when it would not fit', async () => {
    const roomy = await connected();
    roomy.write(packet(0x82, [0, 1], [0]));
    expect(await roomy.next()).toEqual(
      expect.objectContaining({
        cmd: 'disconnect',
        reasonCode: 0x82,
        properties: { reasonString: 'SUBSCRIBE without filters' },
      }),
    );

    const small = await connected(16);
    small.write(packet(0x82, [0, 1], [0]));
    expect(await small.nextBytes()).toEqual(Buffer.from([0xe0, 0x02, 0x82, 0x00]));
    expect(await small.closesWithin(3000)).toBe(true);

    const thirty = await connected(30);
    thirty.write(packet(0x30, str('a/+'), [0], Buffer.from('x')));
    expect(await thirty.nextBytes()).toEqual(Buffer.from([0xe0, 0x02, 0x90, 0x00]));
  });

  it('a refusing CONNACK leaves its reason string out when it would not fit', async () => {
    const roomy = await RawClient.open(server.port, 5);
    roomy.send(connect(undefined, { authenticationMethod: 'FOO' }));
    expect(await roomy.next()).toMatchObject({
      cmd: 'connack',
      reasonCode: 0x8c,
      properties: { reasonString: 'authentication method FOO is not offered' },
    });

    const small = await RawClient.open(server.port, 5);
    small.send(connect(40, { authenticationMethod: 'FOO' }));
    expect(await small.nextBytes()).toEqual(Buffer.from([0x20, 0x03, 0x00, 0x8c, 0x00]));
    expect(await small.closesWithin(3000)).toBe(true);
  });

  it('a message too large for the client is dropped for it, retained or live, and the next one gets through (MQTT-3.1.2-25)', async () => {
    const big = Buffer.alloc(60, 'x');
    const publisher = await connected();
    publisher.write(packet(0x33, str('mps/retained'), [0, 1], [0], big));
    expect(await publisher.next()).toMatchObject({ cmd: 'puback', messageId: 1 });

    const small = await connected(30);
    small.write(packet(0x82, [0, 1], [0], str('mps/#'), [1]));
    expect(await small.next()).toMatchObject({ cmd: 'suback', granted: [1] });
    publisher.write(packet(0x32, str('mps/live'), [0, 2], [0], big));
    publisher.write(packet(0x32, str('mps/live'), [0, 3], [0], Buffer.from('ok')));
    expect(await small.next()).toMatchObject({
      cmd: 'publish',
      topic: 'mps/live',
      payload: Buffer.from('ok'),
    });
    expect(small.isClosed).toBe(false);
  });

  it('CONNACK leaves Response Information out when it would not fit (MQTT.js)', async () => {
    const asking = { protocolVersion: 5 as const, properties: { requestResponseInformation: true } };
    const roomy = await connectWithInbox(server.port, { ...asking, clientId: 'mps-roomy' });
    clients.push(roomy.client);
    expect(roomy.connack.properties?.responseInformation).toBe('response/mps-roomy/');

    const small = await RawClient.open(server.port, 5);
    small.send(connect(16, { requestResponseInformation: true }));
    const bytes = await small.nextBytes();
    expect(bytes.length).toBeLessThanOrEqual(16);
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x20, bytes.length - 2, 0x00, 0x00]));
    expect(bytes.includes(Buffer.from('response/'))).toBe(false);

    const mqttjs = await connectWithInbox(server.port, {
      ...asking,
      clientId: 'mps-mqttjs',
      properties: { requestResponseInformation: true, maximumPacketSize: 16 },
    });
    clients.push(mqttjs.client);
    expect(mqttjs.connack.reasonCode).toBe(0);
    expect(mqttjs.connack.properties?.responseInformation).toBeUndefined();
  });
});
