import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  silentLogger,
  type Authorizer,
  type Credentials,
  type ScramLogin,
  type ScramMechanism,
} from '@robustmq/core';
import { KafkaErrorCode as E } from '../src/codec/error-codes.js';
import { parsePlain, SaslSession, type SaslStep } from '../src/sasl/session.js';

const digestOf = (m: ScramMechanism) => (m === 'SCRAM-SHA-256' ? 'sha256' : 'sha512');

/** What the user store keeps for a SCRAM user (RFC 5802 section 3). */
function credentialFor(password: string, mechanism: ScramMechanism): ScramLogin {
  const digest = digestOf(mechanism);
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, 4096, createHash(digest).digest().length, digest);
  const clientKey = createHmac(digest, salted).update('Client Key').digest();
  return {
    credential: {
      salt,
      iterations: 4096,
      storedKey: createHash(digest).update(clientKey).digest(),
      serverKey: createHmac(digest, salted).update('Server Key').digest(),
    },
    principal: { username: 'alice', superuser: false },
  };
}

const logins = {
  'SCRAM-SHA-256': credentialFor('wonderland', 'SCRAM-SHA-256'),
  'SCRAM-SHA-512': credentialFor('wonderland', 'SCRAM-SHA-512'),
};

const auth: Authorizer = {
  authenticate: (c: Credentials) =>
    Promise.resolve(
      c.username === 'alice' && Buffer.from(c.password ?? []).toString() === 'wonderland'
        ? { username: 'alice', superuser: false }
        : null,
    ),
  authorize: () => Promise.resolve(true),
  scramCredential: (user, mechanism) => Promise.resolve(user === 'alice' ? logins[mechanism] : null),
};

const session = (mechanisms: string[] = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']) =>
  new SaslSession(mechanisms, auth, { clientId: 'test', remoteAddress: '127.0.0.1' }, silentLogger);

/** A SCRAM client (RFC 5802) run against a session; returns the final step. */
async function scramClient(
  s: SaslSession,
  mechanism: ScramMechanism,
  user: string,
  password: string,
  tamper?: (final: string) => string,
) {
  const digest = digestOf(mechanism);
  const clientNonce = randomBytes(18).toString('base64');
  const clientFirstBare = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${clientNonce}`;
  const first = await s.authenticate(Buffer.from(`n,,${clientFirstBare}`));
  if (first.kind !== 'continue') return first;
  const serverFirst = first.response.toString();
  const attrs: Record<string, string> = Object.fromEntries(
    serverFirst.split(',').map((p) => [p[0]!, p.slice(2)]),
  );
  expect(attrs.r?.startsWith(clientNonce)).toBe(true);
  const salted = pbkdf2Sync(
    password,
    Buffer.from(attrs.s ?? '', 'base64'),
    Number(attrs.i),
    createHash(digest).digest().length,
    digest,
  );
  const clientKey = createHmac(digest, salted).update('Client Key').digest();
  const storedKey = createHash(digest).update(clientKey).digest();
  const withoutProof = `c=biws,r=${attrs.r}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = createHmac(digest, storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!)).toString('base64');
  let final = `${withoutProof},p=${proof}`;
  if (tamper) final = tamper(final);
  const last = await s.authenticate(Buffer.from(final));
  if (last.kind === 'done') {
    const serverKey = createHmac(digest, salted).update('Server Key').digest();
    const expected = createHmac(digest, serverKey).update(authMessage).digest('base64');
    expect(last.response.toString()).toBe(`v=${expected}`);
  }
  return last;
}

describe('SASL', () => {
  it('parses PLAIN tokens', () => {
    expect(parsePlain(Buffer.from('\0alice\0pw'))).toEqual({
      authzid: '',
      username: 'alice',
      password: Buffer.from('pw'),
    });
    expect(parsePlain(Buffer.from('alice\0pw'))).toBeNull();
    expect(parsePlain(Buffer.from('\0a\0b\0c'))).toBeNull();
  });

  it('authenticates PLAIN through the authorizer and refuses a wrong password', async () => {
    const ok = session();
    expect(ok.handshake('PLAIN')).toBe(E.none);
    expect(await ok.authenticate(Buffer.from('\0alice\0wonderland'))).toMatchObject<Partial<SaslStep>>({
      kind: 'done',
      principal: { username: 'alice', superuser: false },
    });
    const bad = session();
    bad.handshake('PLAIN');
    const failed = await bad.authenticate(Buffer.from('\0alice\0guess'));
    expect(failed).toMatchObject({ kind: 'failed', errorCode: E.saslAuthenticationFailed });
    expect((failed as { message: string }).message).toMatch(/PLAIN/);
    const other = session();
    other.handshake('PLAIN');
    expect((await other.authenticate(Buffer.from('bob\0alice\0wonderland'))).kind).toBe('failed');
  });

  it('offers only the enabled mechanisms and needs a handshake first', async () => {
    const s = session(['SCRAM-SHA-512']);
    expect(await s.authenticate(Buffer.from('\0alice\0wonderland'))).toMatchObject({
      errorCode: E.illegalSaslState,
    });
    expect(s.handshake('PLAIN')).toBe(E.unsupportedSaslMechanism);
    expect(s.handshake('GSSAPI')).toBe(E.unsupportedSaslMechanism);
    expect(s.handshake('SCRAM-SHA-512')).toBe(E.none);
  });

  for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const) {
    it(`runs a ${mechanism} exchange and proves the server knows the key`, async () => {
      const s = session();
      expect(s.handshake(mechanism)).toBe(E.none);
      const result = await scramClient(s, mechanism, 'alice', 'wonderland');
      expect(result).toMatchObject({ kind: 'done', principal: { username: 'alice' } });
      // The exchange is over: nothing more is accepted on this connection.
      expect((await s.authenticate(Buffer.from('n,,n=alice,r=x'))).kind).toBe('failed');
    });

    it(`refuses ${mechanism} with a wrong password, an unknown user or a tampered nonce`, async () => {
      const wrong = session();
      wrong.handshake(mechanism);
      expect(await scramClient(wrong, mechanism, 'alice', 'guess')).toMatchObject({
        kind: 'failed',
        errorCode: E.saslAuthenticationFailed,
      });
      const unknown = session();
      unknown.handshake(mechanism);
      // An unknown user still gets a challenge, and fails only at the proof.
      expect(await scramClient(unknown, mechanism, 'mallory', 'x')).toMatchObject({ kind: 'failed' });
      const tampered = session();
      tampered.handshake(mechanism);
      const result = await scramClient(tampered, mechanism, 'alice', 'wonderland', (f) =>
        f.replace(/r=([^,]*)/, 'r=$1x'),
      );
      expect(result).toMatchObject({ kind: 'failed' });
      const garbage = session();
      garbage.handshake(mechanism);
      expect(await garbage.authenticate(Buffer.from('hello'))).toMatchObject({ kind: 'failed' });
    });
  }
});
