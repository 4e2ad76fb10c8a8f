import { generate } from 'selfsigned';
import { beforeAll, describe, expect, it } from 'vitest';
import { batch, open, readAll, sha, tempDir } from '../helpers.js';
import { client, startServer } from './helpers.js';

let pems: { cert: string; key: string };

beforeAll(async () => {
  const generated = await generate([{ name: 'commonName', value: 'robustmq-journal-test' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  });
  pems = { cert: generated.cert, key: generated.private };
}, 30_000);

describe('journal over TLS', () => {
  it('serves a client that trusts the server certificate', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine, { tls: { cert: pems.cert, key: pems.key } });
    const journal = client(server.port, { tls: { ca: pems.cert } });
    await journal.createShard('s');
    const sent = [batch(100), batch(3 * 1024 * 1024)];
    await journal.append('s', sent);
    const stored = await readAll(journal, 's');
    expect(stored.map((s) => sha(s.data))).toEqual(sent.map((b) => sha(b.data)));
  });
});
