import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_HEADER, RawClient, SASL_HEADER } from './helpers/raw-client.js';
import { TestClient } from './helpers/rhea-client.js';
import { startServer, type AmqpServer } from './helpers/server.js';

let server: AmqpServer;
let token: string;

beforeAll(async () => {
  server = await startServer({ extra: ['[admin]', 'password = "admin-pw"'] });
  const login = await fetch(`${server.httpUrl}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'admin-pw' }),
  });
  token = ((await login.json()) as { token: string }).token;
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

async function allowAnonymous(allow: boolean): Promise<void> {
  const response = await fetch(`${server.httpUrl}/api/v1/config`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ 'auth.allow_anonymous': allow }),
  });
  expect(response.status).toBe(200);
}

/** The SASL mechanisms the broker offers a new connection, as the text of its sasl-mechanisms frame. */
async function offered(): Promise<string[]> {
  const raw = await RawClient.open(server.port);
  raw.send(SASL_HEADER);
  await raw.waitFor(12);
  await raw.waitFor(8 + raw.received.readUInt32BE(8));
  raw.socket.destroy();
  const frame = raw.received.subarray(8).toString('latin1');
  return ['ANONYMOUS', 'PLAIN'].filter((mechanism) => frame.includes(mechanism));
}

describe('SASL on offer follows auth.allow_anonymous as it is now', { timeout: 20_000 }, () => {
  it('offers ANONYMOUS and AMQP without SASL while anonymous clients are admitted', async () => {
    expect(await offered()).toEqual(['ANONYMOUS', 'PLAIN']);
    const client = await TestClient.connect(server.port);
    await client.close();
  });

  it('offers only PLAIN once they are not, and answers AMQP without SASL with the SASL header', async () => {
    await allowAnonymous(false);
    expect(await offered()).toEqual(['PLAIN']);
    const raw = await RawClient.open(server.port);
    raw.send(AMQP_HEADER);
    await raw.closedText();
    expect(raw.received).toEqual(SASL_HEADER);
    await expect(TestClient.connect(server.port, { username: 'anonymous' })).rejects.toThrow();
    const client = await TestClient.connect(server.port, { username: 'admin', password: 'admin-pw' });
    const sender = await client.sender('queue://sasl-offer');
    expect((await sender.send({ body: 'signed' })).outcome).toBe('accepted');
    await client.close();
  });

  it('offers ANONYMOUS again once they are admitted again', async () => {
    await allowAnonymous(true);
    expect(await offered()).toEqual(['ANONYMOUS', 'PLAIN']);
    const client = await TestClient.connect(server.port, { username: 'anonymous' });
    await client.close();
  });
});
