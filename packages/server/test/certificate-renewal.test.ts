import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { freePort, runServer, startServer, tempDir } from './helpers/server-process.js';

// A node serving TLS on an MQTT listener, its admin API and its internal port reads its
// certificates again on SIGHUP: connections made after use the renewed ones.

const dir = tempDir('renewal');
afterAll(() => dir.remove());
const file = (name: string) => join(dir.path, name);

async function certs(...args: string[]): Promise<void> {
  const made = await runServer({ args: ['certs', ...args] });
  if (made.code !== 0) throw new Error(made.stderr);
}

/** The fingerprint of the certificate a TLS port shows. */
function shown(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ...options }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

const fingerprint = (name: string) => new X509Certificate(readFileSync(file(name))).fingerprint256;

describe('certificates read again on SIGHUP', () => {
  it('serves renewed certificates on every TLS port, and keeps the old ones when the new cannot be read', async () => {
    await certs('ca', '--dir', dir.path);
    for (const name of ['first', 'second'])
      await certs('node', '--dir', dir.path, '--name', name, '--host', '127.0.0.1');
    copyFileSync(file('first.pem'), file('live.pem'));
    copyFileSync(file('first-key.pem'), file('live-key.pem'));
    const rpcPort = await freePort();
    const server = await startServer({
      cwd: dir.path,
      args: [
        '--data-dir',
        file('data'),
        '--bind',
        '127.0.0.1',
        '--http-port',
        '0',
        '--protocols',
        '@robustmq/protocol-mqtt',
        '--mqtt-port',
        '0',
        '--set',
        'log.format="json"',
        '--set',
        `cluster.meta_nodes=["1@127.0.0.1:${rpcPort}"]`,
        '--set',
        `rpc.port=${rpcPort}`,
        ...['rpc.tls_cert="live.pem"', 'rpc.tls_key="live-key.pem"', 'rpc.tls_ca="ca.pem"'].flatMap((s) => [
          '--set',
          s,
        ]),
        ...['http.tls_cert="live.pem"', 'http.tls_key="live-key.pem"'].flatMap((s) => ['--set', s]),
        ...[
          'mqtt.listeners=["tcp", "tls"]',
          'mqtt.tls_port=0',
          'mqtt.tls_cert="live.pem"',
          'mqtt.tls_key="live-key.pem"',
        ].flatMap((s) => ['--set', s]),
      ],
    });
    try {
      const ca = readFileSync(file('ca.pem'));
      const asNode = {
        ca,
        cert: readFileSync(file('second.pem')),
        key: readFileSync(file('second-key.pem')),
      };
      const ports = () => [
        shown(server.port('mqtt/tls'), { ca }),
        shown(server.port('admin/http'), { ca }),
        shown(server.port('meta/rpc'), asNode),
      ];
      expect(await Promise.all(ports())).toEqual(Array(3).fill(fingerprint('first.pem')));

      // The files are replaced (a renewal), and the node told.
      copyFileSync(file('second.pem'), file('live.pem'));
      copyFileSync(file('second-key.pem'), file('live-key.pem'));
      server.child.kill('SIGHUP');
      await vi.waitFor(() => expect(server.logs.some((l) => l.msg === 'certificates read again')).toBe(true));
      const renewed = server.logs.find((l) => l.msg === 'certificates read again')!.renewed;
      expect(renewed).toEqual(expect.arrayContaining(['rpc', 'http', 'mqtt/tls']));
      expect(await Promise.all(ports())).toEqual(Array(3).fill(fingerprint('second.pem')));

      // A key that is not the certificate's: the node says so and keeps serving the ones in use.
      copyFileSync(file('first-key.pem'), file('live-key.pem'));
      server.child.kill('SIGHUP');
      await vi.waitFor(() =>
        expect(server.logs.some((l) => l.msg === 'certificates not read again; the ones in use stay')).toBe(
          true,
        ),
      );
      expect(String(server.logs.find((l) => l.level === 50)?.err)).toMatch(
        /not a usable certificate and key/,
      );
      expect(await Promise.all(ports())).toEqual(Array(3).fill(fingerprint('second.pem')));
    } finally {
      await server.stop();
    }
  }, 60_000);
});
