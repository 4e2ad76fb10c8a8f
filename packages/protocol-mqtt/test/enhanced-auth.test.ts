import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../src/codec/index.js';
import { startInProcess } from './helpers/in-process.js';
import { endAll } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';
import { ScramClient } from './helpers/scram-client.js';

type AuthPacket = Extract<Packet, { cmd: 'auth' }>;
type ConnackPacket = Extract<Packet, { cmd: 'connack' }>;

let dir: string;
let broker: Awaited<ReturnType<typeof startInProcess>>;
let clients: MqttClient[] = [];

// A custom method from a module named in the config: the broker sends a challenge, the client
// answers `token:<challenge>`; the principal is the user name in the token data of CONNECT.
const TOKEN_MODULE = `
export default {
  'TOKEN-CHALLENGE': (request) => {
    let challenge = null;
    return {
      async step(data) {
        if (challenge === null) {
          challenge = 'c-' + request.clientId;
          return { outcome: 'continue', data: Buffer.from(challenge) };
        }
        return Buffer.from(data ?? []).toString() === 'token:' + challenge
          ? { outcome: 'success', principal: { username: 'token-user', superuser: false }, data: Buffer.from('welcome') }
          : { outcome: 'failure', reason: 'wrong token' };
      },
    };
  },
};
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'robustmq-mqtt-auth-'));
  writeFileSync(join(dir, 'token-auth.mjs'), TOKEN_MODULE);
  broker = await startInProcess({ enhanced_auth_module: join(dir, 'token-auth.mjs') });
});
afterAll(async () => {
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await endAll(clients);
  clients = [];
});

/** MQTT.js v5 running SCRAM through CONNECT properties and its handleAuth hook. */
function scramWithMqttJs(
  password: string,
  method = 'SCRAM-SHA-256',
): Promise<{ client: MqttClient; connack: IConnackPacket; scram: ScramClient }> {
  const scram = new ScramClient('alice', password, method === 'SCRAM-SHA-256' ? 'sha256' : 'sha512');
  const client = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    clientId: `scram-${Math.random().toString(36).slice(2)}`,
    properties: { authenticationMethod: method, authenticationData: scram.first() },
  });
  clients.push(client);
  client.handleAuth = (packet, callback) => {
    try {
      const data = scram.final(Buffer.from(packet.properties!.authenticationData!));
      callback(undefined, {
        cmd: 'auth',
        reasonCode: 0x18,
        properties: { authenticationMethod: method, authenticationData: data },
      });
    } catch (error) {
      callback(error as Error);
    }
  };
  return new Promise((resolve, reject) => {
    client.once('connect', (connack) => resolve({ client, connack, scram }));
    client.once('error', reject);
  });
}

describe('MQTT 5 enhanced authentication', () => {
  it.each(['SCRAM-SHA-256', 'SCRAM-SHA-512'])(
    '%s with MQTT.js: AUTH 0x18 both ways, CONNACK with the server signature',
    async (method) => {
      const { client, connack, scram } = await scramWithMqttJs('secret-pw', method);
      expect(connack.reasonCode).toBe(0);
      expect(connack.properties?.authenticationMethod).toBe(method);
      expect(scram.verify(Buffer.from(connack.properties!.authenticationData!))).toBe(true);
      // Authenticated as alice: the authorizer's rules apply to her.
      await client.subscribeAsync('open/topic', { qos: 1 });
      const refused = await client.subscribeAsync('secret/topic', { qos: 1 }).catch((e: unknown) => e);
      expect(String(refused)).toContain('Not authorized');
    },
  );

  it('refuses a wrong SCRAM password with CONNACK 0x87', async () => {
    const error = await scramWithMqttJs('wrong-pw').catch((e: unknown) => e as { code: number });
    expect(error).toMatchObject({ code: 0x87 });
  });

  it('refuses an unknown user only at the proof, like a wrong password', async () => {
    const raw = await RawClient.open(broker.port, 5);
    const scram = new ScramClient('mallory', 'x');
    raw.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clientId: 'mallory',
      clean: true,
      keepalive: 30,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.first() },
    });
    const challenge = (await raw.next()) as AuthPacket;
    expect(challenge).toMatchObject({ cmd: 'auth', reasonCode: 0x18 });
    raw.send({
      cmd: 'auth',
      reasonCode: 0x18,
      properties: {
        authenticationMethod: 'SCRAM-SHA-256',
        authenticationData: scram.final(challenge.properties!.authenticationData!),
      },
    });
    expect(await raw.next()).toMatchObject({ cmd: 'connack', reasonCode: 0x87 });
    expect(await raw.closesWithin(2000)).toBe(true);
  });

  it('refuses an unknown authentication method with CONNACK 0x8C', async () => {
    const error = await mqtt
      .connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        properties: { authenticationMethod: 'KERBEROS' },
      })
      .catch((e: unknown) => e as { code: number });
    expect(error).toMatchObject({ code: 0x8c });
    expect(
      broker.metrics.get('robustmq_mqtt_connections_refused_total', { reason: 'bad_authentication_method' }),
    ).toBe(1);
  });

  it('runs a method from enhanced_auth_module, and re-authenticates with AUTH 0x19', async () => {
    const raw = await RawClient.open(broker.port, 5);
    const method = 'TOKEN-CHALLENGE';
    raw.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clientId: 'tok',
      clean: true,
      keepalive: 30,
      properties: { authenticationMethod: method },
    });
    const auth = (data: string, reasonCode: number): Packet => ({
      cmd: 'auth',
      reasonCode,
      properties: { authenticationMethod: method, authenticationData: Buffer.from(data) },
    });
    const first = (await raw.next()) as AuthPacket;
    expect(first.properties?.authenticationData?.toString()).toBe('c-tok');
    raw.send(auth('token:c-tok', 0x18));
    const connack = (await raw.next()) as ConnackPacket;
    expect(connack).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    expect(connack.properties?.authenticationData?.toString()).toBe('welcome');

    // Re-authentication while connected: 0x19, challenge, answer, AUTH 0x00.
    raw.send(auth('', 0x19));
    expect(((await raw.next()) as AuthPacket).properties?.authenticationData?.toString()).toBe('c-tok');
    raw.send(auth('token:c-tok', 0x18));
    const done = (await raw.next()) as AuthPacket;
    expect(done).toMatchObject({ cmd: 'auth', reasonCode: 0 });
    expect(done.properties?.authenticationData?.toString()).toBe('welcome');
    // Other packets still flow.
    raw.send({ cmd: 'pingreq' });
    expect((await raw.next()).cmd).toBe('pingresp');

    // A failed re-authentication ends the connection with DISCONNECT 0x87.
    raw.send(auth('', 0x19));
    await raw.next();
    raw.send(auth('token:wrong', 0x18));
    expect(await raw.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x87 });
    expect(await raw.closesWithin(2000)).toBe(true);
  });

  it('refuses an AUTH answer with another method during CONNECT (CONNACK 0x82)', async () => {
    const raw = await RawClient.open(broker.port, 5);
    raw.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clientId: 'switcher',
      clean: true,
      keepalive: 30,
      properties: { authenticationMethod: 'TOKEN-CHALLENGE' },
    });
    expect(await raw.next()).toMatchObject({ cmd: 'auth', reasonCode: 0x18 });
    raw.send({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256' } });
    expect(await raw.next()).toMatchObject({ cmd: 'connack', reasonCode: 0x82 });
    expect(await raw.closesWithin(2000)).toBe(true);
  });

  it('treats AUTH from a client that did not use enhanced authentication as a protocol error', async () => {
    const raw = await RawClient.connected(broker.port, 5, 'plain');
    raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-256' } });
    expect(await raw.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x82 });
    expect(await raw.closesWithin(2000)).toBe(true);
  });
});
