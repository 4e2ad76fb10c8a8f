import rhea from 'rhea';
import { describe, expect, it } from 'vitest';
import {
  AmqpHeader,
  MalformedMessageError,
  parseIncoming,
  readHeader,
  splitSections,
  toStoredMessage,
  toTransferPayload,
  writeHeader,
} from '../src/message-format.js';

const encode = (message: Record<string, unknown>) => rhea.message.encode(message);
const decode = (bytes: Buffer) => rhea.message.decode(bytes) as Record<string, unknown>;
/** A first delivery, and one after `count` failed deliveries. */
const FIRST = { deliveryCount: 0, redelivered: false };
const failed = (count: number) => ({ deliveryCount: count, redelivered: true });
const header = (m: { headers: readonly { key: string; value: Uint8Array }[] }, key: string) =>
  m.headers.find((h) => h.key === key)?.value;

function store(message: Record<string, unknown>, now = 1000) {
  const raw = encode(message);
  return toStoredMessage('t', parseIncoming(raw), now);
}

describe('AMQP messages in the unified namespace', () => {
  it('keeps a data body as the payload and sends the message back out byte for byte', () => {
    const raw = encode({
      body: rhea.message.data_section(Buffer.from('raw bytes')),
      message_id: 7,
      application_properties: { a: 1 },
      message_annotations: { 'x-opt-k': 'v' },
    });
    const stored = toStoredMessage('t', parseIncoming(raw), 0);
    expect(Buffer.from(stored.payload).toString()).toBe('raw bytes');
    expect(header(stored, AmqpHeader.body)).toBeUndefined();
    expect(toTransferPayload(stored, FIRST)).toEqual(raw);
  });

  it('delivers a stored transfer as the very bytes that came, unless it must change', () => {
    const raw = encode({ body: 'as sent', durable: true, subject: 's' });
    const stored = toStoredMessage('t', parseIncoming(raw), 0);
    expect(toTransferPayload(stored, FIRST)).toBe(raw);
    // A redelivery carries its delivery count, so the header is written anew.
    expect(decode(toTransferPayload(stored, failed(2)))).toMatchObject({
      delivery_count: 2,
      body: 'as sent',
    });
    // A stored message read back (another object) is re-encoded to the same message.
    expect(toTransferPayload({ ...stored }, FIRST)).toEqual(raw);
  });

  it('drops delivery annotations and puts sections in the standard order before delivering', () => {
    const withAnnotations = encode({ body: 'b', delivery_annotations: { hop: 1 }, subject: 's' });
    const out = toTransferPayload(toStoredMessage('t', parseIncoming(withAnnotations), 0), FIRST);
    expect(out).not.toBe(withAnnotations);
    expect(decode(out)).toMatchObject({ body: 'b', subject: 's' });
    expect(decode(out).delivery_annotations).toBeUndefined();

    const sections = splitSections(encode({ subject: 's', body: 'b' }));
    const properties = sections.properties!;
    const reordered = Buffer.concat([...sections.body, properties]);
    const rebuilt = toTransferPayload(toStoredMessage('t', parseIncoming(reordered), 0), FIRST);
    expect(rebuilt.subarray(0, properties.length)).toEqual(properties);
    expect(decode(rebuilt)).toMatchObject({ subject: 's', body: 'b' });
  });

  it('keeps a string value as UTF-8 and rebuilds it', () => {
    const stored = store({ body: 'héllo' });
    expect(Buffer.from(stored.payload).toString('utf8')).toBe('héllo');
    expect(decode(toTransferPayload(stored, FIRST)).body).toBe('héllo');
  });

  it('keeps other bodies as their encoded sections', () => {
    const stored = store({ body: { nested: [1, 2] } });
    expect(Buffer.from(header(stored, AmqpHeader.body)!).toString()).toBe('sections');
    expect(decode(toTransferPayload(stored, FIRST)).body).toEqual({ nested: [1, 2] });
  });

  it('notes expiry and priority for delivery', () => {
    const stored = store({ body: 'x', ttl: 500, priority: 7 }, 1000);
    expect(Buffer.from(header(stored, AmqpHeader.expiresAt)!).toString()).toBe('1500');
    expect(Buffer.from(header(stored, AmqpHeader.priority)!).toString()).toBe('7');
  });

  it('writes the delivery count into the header on redelivery, added to the count it came with', () => {
    const stored = store({ body: 'x', durable: true, priority: 6, ttl: 100 }, 1000);
    const redelivered = decode(toTransferPayload(stored, failed(3), 1000));
    expect(redelivered).toMatchObject({ durable: true, priority: 6, ttl: 100, delivery_count: 3, body: 'x' });
    const counted = store({ body: 'y', delivery_count: 5 });
    expect(decode(toTransferPayload(counted, FIRST)).delivery_count).toBe(5);
    expect(decode(toTransferPayload(counted, failed(2))).delivery_count).toBe(7);
    expect(
      readHeader(
        writeHeader({ durable: false, priority: 4, ttl: null, firstAcquirer: true, deliveryCount: 9 }),
      ),
    ).toEqual({ durable: false, priority: 4, ttl: null, firstAcquirer: true, deliveryCount: 9 });
  });

  it('sends a message given again with first-acquirer false, its other header fields as they came', () => {
    const raw = encode({ body: 'x', first_acquirer: true, durable: true, priority: 6 });
    const stored = toStoredMessage('t', parseIncoming(raw), 1000);
    expect(toTransferPayload(stored, FIRST, 1000)).toBe(raw);
    // Released and given again: no failed delivery, but a link may have acquired it.
    const again = decode(toTransferPayload(stored, { deliveryCount: 0, redelivered: true }, 1000));
    expect(again).toMatchObject({ first_acquirer: false, durable: true, priority: 6, body: 'x' });
    expect(again.delivery_count ?? 0).toBe(0);
    expect(decode(toTransferPayload(stored, failed(1), 1000))).toMatchObject({
      first_acquirer: false,
      delivery_count: 1,
    });
    // A header without first-acquirer (false by default) goes out as it came.
    const plain = encode({ body: 'y' });
    const bare = toStoredMessage('t', parseIncoming(plain), 1000);
    expect(toTransferPayload(bare, { deliveryCount: 0, redelivered: true }, 1000)).toEqual(plain);
  });

  it('sends what remains of the ttl, and absolute-expiry-time as it came', () => {
    const expiry = new Date(5_000_000);
    const raw = encode({ body: 'x', ttl: 100, absolute_expiry_time: expiry, subject: 's' });
    const stored = toStoredMessage('t', parseIncoming(raw), 1000);
    expect(decode(toTransferPayload(stored, FIRST, 1000)).ttl).toBe(100);
    const later = toTransferPayload(stored, FIRST, 1040);
    expect(decode(later)).toMatchObject({ ttl: 60, absolute_expiry_time: expiry, subject: 's', body: 'x' });
    // The properties section, where absolute-expiry-time is, goes out byte for byte.
    const properties = splitSections(raw).properties!;
    expect(splitSections(later).properties).toEqual(properties);
    // Never 0, which would read as no ttl.
    expect(decode(toTransferPayload(stored, FIRST, 1200)).ttl).toBe(1);
    expect(
      decode(toTransferPayload(store({ body: 'forever', durable: true }), FIRST, 9e12)).ttl,
    ).toBeUndefined();
  });

  it('delivers a message from another protocol as a data section with its headers as properties', () => {
    const payload = toTransferPayload(
      {
        topic: 't',
        key: null,
        payload: Buffer.from('{"k":1}'),
        headers: [{ key: 'trace', value: Buffer.from('abc') }],
        timestamp: 0,
      },
      FIRST,
    );
    const message = decode(payload);
    expect(Buffer.from((message.body as { content: Buffer }).content).toString()).toBe('{"k":1}');
    expect(message.application_properties).toEqual({ trace: 'abc' });
  });

  it('maps a record’s key, content type, timestamp and binary headers for AMQP receivers', () => {
    const message = decode(
      toTransferPayload(
        {
          topic: 't',
          key: Buffer.from('sensors/room1'),
          payload: Buffer.from([0, 0xff]),
          headers: [
            { key: 'unit', value: Buffer.from('C') },
            { key: 'content-type', value: Buffer.from('application/json') },
            { key: 'raw', value: Buffer.from([0xff, 0x00]) },
          ],
          timestamp: 1_700_000_000_123,
        },
        FIRST,
      ),
    );
    expect(Buffer.from((message.body as { content: Buffer }).content)).toEqual(Buffer.from([0, 0xff]));
    expect(message.application_properties).toEqual({ unit: 'C', raw: Buffer.from([0xff, 0x00]) });
    expect(message.content_type).toBe('application/json');
    expect((message.creation_time as Date).getTime()).toBe(1_700_000_000_123);
    expect(message.message_annotations).toEqual({ 'x-opt-kafka-key': Buffer.from('sensors/room1') });
  });

  it('keeps the content type and binary application properties as plain headers', () => {
    const stored = store({
      body: rhea.message.data_section(Buffer.from('b')),
      content_type: 'text/plain',
      application_properties: { s: 'x', b: Buffer.from([1, 2]), n: 1 },
    });
    const plain = stored.headers.filter((h) => !h.key.startsWith('amqp-'));
    expect(plain.map((h) => [h.key, Buffer.from(h.value)])).toEqual([
      ['s', Buffer.from('x')],
      ['b', Buffer.from([1, 2])],
      ['content-type', Buffer.from('text/plain')],
    ]);
  });

  it('reads to, absolute expiry and string application properties without rhea', () => {
    const incoming = parseIncoming(
      encode({
        to: 'queue://a',
        absolute_expiry_time: new Date(5000),
        application_properties: { s: 'x', n: 1, t: 'y' },
        body: 'b',
      }),
    );
    expect(incoming).toMatchObject({
      to: 'queue://a',
      absoluteExpiry: 5000,
      stringProperties: { s: 'x', t: 'y' },
      binaryProperties: {},
      contentType: undefined,
    });
  });

  it('refuses bytes that are not message sections', () => {
    expect(() => splitSections(Buffer.from([0x00, 0x53, 0x75, 0xb0, 0, 0, 1, 0, 1]))).toThrow(
      MalformedMessageError,
    );
    expect(() => splitSections(Buffer.from([0x01, 0x02]))).toThrow(MalformedMessageError);
    expect(() => splitSections(Buffer.from([0x00, 0x53, 0x79, 0x40]))).toThrow('unknown message section');
  });
});
