import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ScramCredential, ScramLogin, ScramMechanism } from '@robustmq/core';
import type { EnhancedAuthExchange, EnhancedAuthMethod, EnhancedAuthStep } from './enhanced-auth.js';

/** Salts shown for unknown users are derived from this, so they look stable and real. */
const DECOY_KEY = randomBytes(32);
const DECOY_ITERATIONS = 4096;

/**
 * The server side of SCRAM (RFC 5802, RFC 7677) as an MQTT 5 enhanced authentication method,
 * against the credentials the node's authorizer stores. The Authentication Data of CONNECT is
 * the client-first message, the broker's AUTH 0x18 carries the server-first message, the
 * client's AUTH 0x18 the client-final message, and CONNACK the server-final message
 * (`v=<server signature>`). No channel binding.
 */
export function scramMethod(mechanism: ScramMechanism): EnhancedAuthMethod {
  const digest = mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512';
  return (request) => {
    let state: {
      gs2Header: string;
      clientFirstBare: string;
      serverFirst: string;
      nonce: string;
      login: ScramLogin | null;
    } | null = null;
    const fail = (reason: string): EnhancedAuthStep => ({ outcome: 'failure', reason });
    const exchange: EnhancedAuthExchange = {
      async step(data) {
        const text = data === undefined ? '' : Buffer.from(data).toString('utf8');
        if (state === null) {
          const first = parseClientFirst(text);
          if (typeof first === 'string') return fail(first);
          if (request.username !== null && request.username !== first.username) {
            return fail('the SCRAM user name differs from the CONNECT user name');
          }
          const login = await request.authorizer.scramCredential(first.username, mechanism);
          const credential = login?.credential ?? decoy(first.username, digest);
          const nonce = first.nonce + randomBytes(18).toString('base64');
          const serverFirst = `r=${nonce},s=${Buffer.from(credential.salt).toString('base64')},i=${credential.iterations}`;
          state = { gs2Header: first.gs2Header, clientFirstBare: first.bare, serverFirst, nonce, login };
          return { outcome: 'continue', data: Buffer.from(serverFirst) };
        }
        const final = parseClientFinal(text);
        if (typeof final === 'string') return fail(final);
        if (final.channelBinding !== Buffer.from(state.gs2Header).toString('base64')) {
          return fail('channel binding does not match the client-first message');
        }
        if (final.nonce !== state.nonce) return fail('nonce does not match');
        if (state.login === null) return fail('unknown user');
        const { storedKey, serverKey } = state.login.credential;
        const authMessage = `${state.clientFirstBare},${state.serverFirst},${final.withoutProof}`;
        const signature = createHmac(digest, storedKey).update(authMessage).digest();
        if (final.proof.length !== signature.length) return fail('bad proof');
        const clientKey = Buffer.alloc(signature.length);
        for (let i = 0; i < signature.length; i++) clientKey[i] = final.proof[i]! ^ signature[i]!;
        const computed = createHash(digest).update(clientKey).digest();
        if (computed.length !== storedKey.length || !timingSafeEqual(computed, storedKey)) {
          return fail('bad password');
        }
        const serverSignature = createHmac(digest, serverKey).update(authMessage).digest('base64');
        return {
          outcome: 'success',
          principal: state.login.principal,
          data: Buffer.from(`v=${serverSignature}`),
        };
      },
    };
    return exchange;
  };
}

interface ClientFirst {
  gs2Header: string;
  bare: string;
  username: string;
  nonce: string;
}

/** `n,,n=<user>,r=<nonce>[,...]` (`y,,` too: a client able to bind that thinks we cannot). */
function parseClientFirst(text: string): ClientFirst | string {
  const match = /^([ny]),(a=[^,]*)?,(.*)$/.exec(text);
  if (!match)
    return text.startsWith('p=') ? 'channel binding is not supported' : 'malformed client-first message';
  const gs2Header = `${match[1]},${match[2] ?? ''},`;
  const bare = match[3]!;
  const attributes = attributesOf(bare);
  const username = attributes.get('n');
  const nonce = attributes.get('r');
  if (username === undefined || nonce === undefined || nonce.length === 0 || bare.startsWith('m=')) {
    return 'malformed client-first message';
  }
  return { gs2Header, bare, username: username.replaceAll('=2C', ',').replaceAll('=3D', '='), nonce };
}

interface ClientFinal {
  channelBinding: string;
  nonce: string;
  proof: Buffer;
  withoutProof: string;
}

/** `c=<base64 gs2 header>,r=<nonce>[,...],p=<base64 proof>`. */
function parseClientFinal(text: string): ClientFinal | string {
  const at = text.lastIndexOf(',p=');
  if (at < 0) return 'malformed client-final message';
  const withoutProof = text.slice(0, at);
  const attributes = attributesOf(withoutProof);
  const channelBinding = attributes.get('c');
  const nonce = attributes.get('r');
  if (channelBinding === undefined || nonce === undefined) return 'malformed client-final message';
  return { channelBinding, nonce, proof: Buffer.from(text.slice(at + 3), 'base64'), withoutProof };
}

function attributesOf(text: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of text.split(',')) {
    if (part.length >= 2 && part[1] === '=' && !attributes.has(part[0]!)) {
      attributes.set(part[0]!, part.slice(2));
    }
  }
  return attributes;
}

/** A credential for a user that does not exist: the exchange goes on and fails at the proof. */
function decoy(username: string, digest: string): ScramCredential {
  const empty = Buffer.alloc(createHash(digest).digest().length);
  return {
    salt: createHmac('sha256', DECOY_KEY).update(username).digest().subarray(0, 24),
    iterations: DECOY_ITERATIONS,
    storedKey: empty,
    serverKey: empty,
  };
}
