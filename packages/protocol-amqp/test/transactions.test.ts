import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { AMQP_HEADER, frame, OPEN, performatives, RawClient } from './helpers/raw-client.js';

let broker: Awaited<ReturnType<typeof startInProcess>>;

beforeAll(async () => {
  broker = await startInProcess();
});

afterAll(async () => {
  await broker.stop();
});

/** `begin` on channel 0: no remote channel, next-outgoing-id 0, windows of 100. */
const BEGIN = frame(Buffer.from([0x00, 0x53, 0x11, 0xc0, 0x07, 0x04, 0x40, 0x43, 0x52, 0x64, 0x52, 0x64]));
const LOCAL_TRANSACTIONS = Buffer.from('amqp:local-transactions');

/** A list8 of `count` encoded fields. */
function list(count: number, ...fields: Buffer[]): Buffer {
  const body = Buffer.concat(fields);
  return Buffer.concat([Buffer.from([0xc0, body.length + 1, count]), body]);
}

/** The coordinator target (AMQP 1.0 section 4.5.1) with its capabilities as one symbol or an array. */
function coordinator(asArray: boolean): Buffer {
  const symbol = Buffer.concat([Buffer.from([LOCAL_TRANSACTIONS.length]), LOCAL_TRANSACTIONS]);
  const capabilities = asArray
    ? Buffer.concat([Buffer.from([0xe0, symbol.length + 2, 1, 0xa3]), symbol])
    : Buffer.concat([Buffer.from([0xa3]), symbol]);
  return Buffer.concat([Buffer.from([0x00, 0x53, 0x30]), list(1, capabilities)]);
}

/** A client sender's attach on `handle` named `name`, to `target`, from an empty source. */
function attach(name: string, handle: number, target: Buffer): Buffer {
  const fields = [
    Buffer.concat([Buffer.from([0xa1, name.length]), Buffer.from(name)]),
    Buffer.from([0x52, handle]),
    Buffer.from([0x42]),
    Buffer.from([0x40, 0x40]),
    Buffer.from([0x00, 0x53, 0x28, 0x45]),
    target,
  ];
  return frame(Buffer.concat([Buffer.from([0x00, 0x53, 0x12]), list(7, ...fields)]));
}

describe('transactions (AMQP 1.0 part 4), which the broker does not offer', () => {
  it('refuses a coordinator link with not-implemented, whichever way its capabilities come, and keeps the connection', async () => {
    const raw = await RawClient.open(broker.port);
    raw.send(Buffer.concat([AMQP_HEADER, OPEN, BEGIN, attach('txn-array', 0, coordinator(true))]));
    // open, begin, then the refused link: an attach with no target, and a detach with the error.
    await expect.poll(() => performatives(raw.received.subarray(8))).toEqual([0x10, 0x11, 0x12, 0x16]);
    raw.send(attach('txn-symbol', 1, coordinator(false)));
    await expect
      .poll(() => performatives(raw.received.subarray(8)))
      .toEqual([0x10, 0x11, 0x12, 0x16, 0x12, 0x16]);
    const text = raw.received.toString('latin1');
    expect(text.split('amqp:not-implemented').length - 1).toBe(2);
    expect(text).not.toContain('amqp:decode-error');
    raw.socket.destroy();
  });
});
