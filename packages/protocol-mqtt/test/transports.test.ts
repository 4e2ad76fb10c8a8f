import type { ConfigError } from '@robustmq/core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import plugin from '../src/index.js';
import { parseSettings } from '../src/config.js';
import { connectClient, Inbox } from './helpers/mqttjs.js';
import { Watched } from './helpers/processes.js';
import { startServer, type MqttServer } from './helpers/server.js';

function configError(section: Record<string, unknown>): ConfigError {
  try {
    parseSettings(section);
  } catch (e) {
    return e as ConfigError;
  }
  throw new Error('no error');
}

describe('[mqtt] transport settings', () => {
  it('opens only TCP by default, with the usual ports for the others', () => {
    expect(parseSettings({})).toMatchObject({
      listeners: ['tcp'],
      tlsPort: 8883,
      wsPort: 8083,
      wssPort: 8084,
      wsPath: '/mqtt',
      tls: undefined,
    });
  });

  it('builds a listener for each transport listed, with path, subprotocol and PEM files', () => {
    const listeners = plugin
      .create({
        listeners: ['tcp', 'tls', 'ws', 'wss'],
        port: 1,
        tls_port: 2,
        ws_port: 3,
        wss_port: 4,
        ws_path: '/broker',
        tls_cert: '/etc/cert.pem',
        tls_key: '/etc/key.pem',
        tls_ca: '/etc/ca.pem',
      })
      .listeners();
    const tls = { cert: '/etc/cert.pem', key: '/etc/key.pem', ca: '/etc/ca.pem' };
    const web = { path: '/broker', subprotocols: ['mqtt', 'mqttv3.1'], maxMessageBytes: 2 * 1_048_576 };
    expect(listeners).toEqual([
      { name: 'tcp', port: 1, transport: 'tcp' },
      { name: 'tls', port: 2, transport: 'tls', tls },
      { name: 'ws', port: 3, transport: 'ws', ...web },
      { name: 'wss', port: 4, transport: 'wss', tls, ...web },
    ]);
  });

  it('names the setting that is wrong or missing', () => {
    expect(configError({ listeners: ['tcp', 'quic'] }).message).toBe(
      'listeners: must list one or more of "tcp", "tls", "ws", "wss", each once',
    );
    expect(configError({ listeners: [] }).setting).toBe('listeners');
    expect(configError({ listeners: ['ws', 'ws'] }).setting).toBe('listeners');
    expect(configError({ listeners: ['tcp', 'wss'] }).message).toBe(
      'listeners: "wss" needs tls_cert and tls_key',
    );
    expect(configError({ listeners: ['tls'], tls_cert: 'c.pem' }).message).toBe(
      'tls_key: must be set with tls_cert',
    );
    expect(configError({ listeners: ['tls'], tls_key: 'k.pem' }).setting).toBe('tls_cert');
    expect(configError({ tls_ca: 'ca.pem' }).message).toBe('tls_ca: needs tls_cert and tls_key');
    expect(configError({ tls_cert: 'c.pem', tls_key: 'k.pem' }).message).toBe(
      'tls_cert: is set but listeners has neither "tls" nor "wss"',
    );
    expect(configError({ tls_cert: '' }).setting).toBe('tls_cert');
    expect(configError({ ws_path: 'mqtt' }).message).toBe('ws_path: must be a path starting with "/"');
    expect(configError({ ws_port: -1 }).setting).toBe('ws_port');
  });
});

describe('MQTT over TLS and WebSocket', () => {
  let dir: string;
  let cert: string;
  let certFile: string;
  let server: MqttServer;
  const ports: Record<string, number> = {};
  let seq = 0;
  const topic = () => `transports/${++seq}`;
  const clients: MqttClient[] = [];
  const connect = async (url: string, options: mqtt.IClientOptions = {}) => {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    const generated = await generate([{ name: 'commonName', value: 'robustmq-test' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
      ],
    });
    cert = generated.cert;
    dir = mkdtempSync(join(tmpdir(), 'robustmq-mqtt-tls-'));
    certFile = join(dir, 'cert.pem');
    writeFileSync(certFile, cert);
    writeFileSync(join(dir, 'key.pem'), generated.private);
    server = await startServer({
      mqtt: [
        'listeners = ["tcp", "tls", "ws", "wss"]',
        'tls_port = 0',
        'ws_port = 0',
        'wss_port = 0',
        `tls_cert = ${JSON.stringify(certFile)}`,
        `tls_key = ${JSON.stringify(join(dir, 'key.pem'))}`,
      ],
    });
    const ready = server.logs.find((l) => l.msg === 'node ready')!;
    for (const listener of ready.listeners as string[]) {
      const [name, port] = [listener.slice(0, listener.lastIndexOf(':')), listener.split(':').pop()];
      ports[name] = Number(port);
    }
  }, 30_000);

  afterAll(async () => {
    for (const client of clients) await client.endAsync(true);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens the four listeners', () => {
    expect(Object.keys(ports)).toEqual(
      expect.arrayContaining(['mqtt/tcp', 'mqtt/tls', 'mqtt/ws', 'mqtt/wss']),
    );
  });

  it.each([
    ['mqtts', 4],
    ['mqtts', 5],
    ['ws', 4],
    ['ws', 5],
    ['wss', 4],
    ['wss', 5],
  ] as const)('serves %s with MQTT version %i', async (scheme, protocolVersion) => {
    const port = ports[{ mqtts: 'mqtt/tls', ws: 'mqtt/ws', wss: 'mqtt/wss' }[scheme]];
    const path = scheme === 'mqtts' ? '' : '/mqtt';
    const client = await connect(`${scheme}://127.0.0.1:${port}${path}`, { ca: cert, protocolVersion });
    const inbox = new Inbox(client);
    const t = topic();
    await client.subscribeAsync(t, { qos: 1 });
    await client.publishAsync(t, `over ${scheme}`, { qos: 1 });
    expect((await inbox.at(0)).payload).toBe(`over ${scheme}`);
  });

  it('delivers from a TCP publisher to WSS and TLS subscribers', async () => {
    const wss = await connect(`wss://127.0.0.1:${ports['mqtt/wss']}/mqtt`, { ca: cert, protocolVersion: 5 });
    const tls = await connect(`mqtts://127.0.0.1:${ports['mqtt/tls']}`, { ca: cert });
    const t = topic();
    const inboxes = [new Inbox(wss), new Inbox(tls)];
    await Promise.all([wss.subscribeAsync(t, { qos: 1 }), tls.subscribeAsync(t, { qos: 0 })]);
    const publisher = await connectClient(server.port);
    clients.push(publisher);
    await publisher.publishAsync(t, 'from tcp', { qos: 1 });
    for (const inbox of inboxes) expect((await inbox.at(0)).payload).toBe('from tcp');
  });

  it('refuses a client that does not trust the certificate', async () => {
    await expect(connect(`mqtts://127.0.0.1:${ports['mqtt/tls']}`)).rejects.toThrow(/self-signed/);
  });

  it('serves mosquitto_sub over TLS', async () => {
    const t = topic();
    const sub = new Watched('stdbuf', [
      '-oL',
      'mosquitto_sub',
      ...['-h', '127.0.0.1', '-p', String(ports['mqtt/tls']), '--cafile', certFile],
      ...['-d', '-t', t, '-C', '1'],
    ]);
    try {
      await sub.waitFor('received SUBACK');
      const publisher = await connectClient(server.port);
      clients.push(publisher);
      await publisher.publishAsync(t, 'to mosquitto', { qos: 1 });
      const done = await sub.exited;
      expect(done.code).toBe(0);
      expect(done.stdout.split('\n')).toContain('to mosquitto');
    } finally {
      sub.kill();
    }
  });

  it('publishes the will of a WebSocket client that goes without DISCONNECT at once, as for TCP', async () => {
    const t = topic();
    const watcher = await connectClient(server.port);
    clients.push(watcher);
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(t, { qos: 1 });
    const leaving = await mqtt.connectAsync(`ws://127.0.0.1:${ports['mqtt/ws']}/mqtt`, {
      reconnectPeriod: 0,
      keepalive: 60,
      will: { topic: t, payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    // Forced: the socket is closed without a DISCONNECT. Keep-alive alone would take 90 s.
    leaving.end(true);
    expect((await inbox.at(0)).payload).toBe('gone');
  });

  it('refuses a WebSocket message over twice max_packet_size as soon as its length is read', async () => {
    const socket = connectTcp(ports['mqtt/ws']!, '127.0.0.1');
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise((resolve) => socket.once('connect', resolve));
    const key = Buffer.from('0123456789abcdef').toString('base64');
    socket.write(
      [
        'GET /mqtt HTTP/1.1',
        'Host: 127.0.0.1',
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Protocol: mqtt',
        '\r\n',
      ].join('\r\n'),
    );
    await expect.poll(() => received.includes('\r\n\r\n')).toBe(true);
    expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
    const handshake = received.indexOf('\r\n\r\n') + 4;
    // A masked binary frame that announces 80 MB; none of its payload is sent.
    const frame = Buffer.alloc(14);
    frame[0] = 0x82;
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(80_000_000n, 2);
    socket.write(frame);
    await closed;
    // A close frame with status 1009, message too big.
    const close = received.subarray(handshake);
    expect(close[0]).toBe(0x88);
    expect(close.readUInt16BE(2)).toBe(1009);
  });

  it('answers a plain HTTP request on the WebSocket port with 426 Upgrade Required', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: ports['mqtt/ws'], path: '/mqtt' });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(426);
  });

  it('refuses a WebSocket upgrade on another path', async () => {
    const status = await new Promise<number | string>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: ports['mqtt/ws'],
        path: '/other',
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': Buffer.from('0123456789abcdef').toString('base64'),
          'Sec-WebSocket-Protocol': 'mqtt',
        },
      });
      req.on('upgrade', (_res, socket) => {
        socket.destroy();
        resolve('upgraded');
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(400);
  });
});

it('stops at start with one line naming an unreadable certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'robustmq-mqtt-tls-'));
  const missing = join(dir, 'no-such-dir', 'cert.pem');
  const started = startServer({
    dir,
    mqtt: [
      'listeners = ["tcp", "tls"]',
      'tls_port = 0',
      `tls_cert = ${JSON.stringify(missing)}`,
      `tls_key = ${JSON.stringify(missing)}`,
    ],
  });
  try {
    await expect(started).rejects.toThrow(`mqtt/tls certificate: cannot read ${missing}: ENOENT`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
