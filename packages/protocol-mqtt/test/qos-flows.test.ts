import { describe, expect, it } from 'vitest';
import { InboundFlow } from '../src/inbound-flow.js';
import { OutboundFlow } from '../src/outbound-flow.js';

describe('OutboundFlow (broker sending QoS 1 and 2)', () => {
  it('QoS 1: PUBLISH waits for PUBACK, which frees the packet identifier', () => {
    const flow = new OutboundFlow<string>(10, 10);
    const id = flow.send('m1', 1);
    expect(id).toBe(1);
    expect(flow.inflightCount).toBe(1);
    expect(flow.pubcomp(id)).toBeNull();
    expect(flow.pubrec(id, false)).toBe('unknown');
    expect(flow.puback(id)).toBe('m1');
    expect(flow.puback(id)).toBeNull();
    expect(flow.inflightCount).toBe(0);
  });

  it('QoS 2: PUBREC -> PUBREL, PUBCOMP frees; a repeated PUBREC asks for PUBREL again', () => {
    const flow = new OutboundFlow<string>(10, 10);
    const id = flow.send('m2', 2);
    expect(flow.puback(id)).toBeNull();
    expect(flow.pubcomp(id)).toBeNull();
    expect(flow.pubrec(id, false)).toBe('send-pubrel');
    expect([...flow.pending()].map((e) => e.state)).toEqual(['awaiting-pubcomp']);
    expect(flow.pubrec(id, false)).toBe('send-pubrel');
    expect(flow.pubcomp(id)).toBe('m2');
    expect(flow.inflightCount).toBe(0);
  });

  it('QoS 2: a PUBREC with an error reason code ends the exchange', () => {
    const flow = new OutboundFlow<string>(10, 10);
    const id = flow.send('m', 2);
    expect(flow.pubrec(id, true)).toBe('released');
    expect(flow.inflightCount).toBe(0);
  });

  it('never reuses an identifier still in flight and wraps after 65535', () => {
    const flow = new OutboundFlow<number>(70_000, 0);
    const first = flow.send(0, 1);
    for (let i = 1; i < 65_535; i++) flow.send(i, 1);
    expect(flow.inflightCount).toBe(65_535);
    expect(() => flow.send(-1, 1)).toThrow(/no free packet identifier/);
    expect(flow.puback(300)).toBe(299);
    expect(flow.send(65_535, 1)).toBe(300);
    expect(first).toBe(1);
  });

  it('holds messages beyond the window in a bounded queue, oldest first', () => {
    const flow = new OutboundFlow<string>(2, 3);
    flow.send('a', 1);
    flow.send('b', 1);
    expect(flow.canSend()).toBe(false);
    expect(flow.enqueue('c')).toBe(true);
    expect(flow.enqueue('d')).toBe(true);
    expect(flow.enqueue('e')).toBe(true);
    expect(flow.enqueue('f')).toBe(false);
    expect(flow.queued()).toEqual(['c', 'd', 'e']);
    expect(flow.puback(1)).toBe('a');
    expect(flow.canSend()).toBe(true);
    expect(flow.dequeue()).toBe('c');
    expect(flow.queuedCount).toBe(2);
  });

  it('lists what is in flight in send order for redelivery', () => {
    const flow = new OutboundFlow<string>(10, 10);
    const a = flow.send('a', 1);
    const b = flow.send('b', 2);
    const c = flow.send('c', 2);
    flow.pubrec(b, false);
    expect([...flow.pending()].map((e) => [e.packetId, e.message, e.state])).toEqual([
      [a, 'a', 'awaiting-puback'],
      [b, 'b', 'awaiting-pubcomp'],
      [c, 'c', 'awaiting-pubrec'],
    ]);
  });

  it('keeps a long queue in order across compaction', () => {
    const flow = new OutboundFlow<number>(1, 10_000);
    for (let i = 0; i < 5000; i++) flow.enqueue(i);
    for (let i = 0; i < 5000; i++) expect(flow.dequeue()).toBe(i);
    expect(flow.dequeue()).toBeUndefined();
  });
});

describe('InboundFlow (broker receiving QoS 2)', () => {
  it('accepts an identifier once until PUBREL releases it', () => {
    const flow = new InboundFlow();
    expect(flow.isDuplicate(7)).toBe(false);
    flow.accept(7);
    expect(flow.isDuplicate(7)).toBe(true);
    expect(flow.size).toBe(1);
    expect(flow.release(7)).toBe(true);
    expect(flow.release(7)).toBe(false);
    expect(flow.isDuplicate(7)).toBe(false);
  });
});
