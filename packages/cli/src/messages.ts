import { createInterface } from 'node:readline';

/**
 * The bodies to send: the ones given on the command line, repeated up to `count` messages; or, when
 * none are given, one per line of stdin (at most `count`).
 */
export async function* bodies(given: readonly string[], count: number | undefined): AsyncGenerator<string> {
  if (given.length) {
    const total = count ?? given.length;
    for (let i = 0; i < total; i++) yield given[i % given.length]!;
    return;
  }
  let n = 0;
  if (count === 0) return;
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      yield line;
      if (count !== undefined && ++n >= count) return;
    }
  } finally {
    lines.close();
  }
}

/** The host of the admin API address, to reach a protocol's default port on the same machine. */
export function serverHost(server: string): string {
  try {
    return new URL(server).hostname || '127.0.0.1';
  } catch {
    return '127.0.0.1';
  }
}

/** A message body as text: UTF-8 for bytes, JSON for structured values. */
export function bodyText(body: unknown): string {
  if (body === null || body === undefined) return '';
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  // An AMQP data section arrives as {typecode, content: bytes}.
  const content = (body as { content?: unknown }).content;
  if (typeof body === 'object' && 'typecode' in body && content instanceof Uint8Array) {
    return Buffer.from(content).toString('utf8');
  }
  return JSON.stringify(body);
}
