import { describe, expect, it } from 'vitest';
import { AttachedLinks, type AttachStamp } from '../src/attached-links.js';

describe('links attached by name across brokers', () => {
  const owner = { containerId: 'app', username: null };

  it('tells the other brokers of each attachment, and steals one here only for a later one there', () => {
    const told: Array<[string, AttachStamp]> = [];
    const links = new AttachedLinks({ nodeId: 1, tell: (key, stamp) => told.push([key, stamp]) });
    const stolen: string[] = [];
    links.attach(owner, 'receiver', 'in', { steal: () => stolen.push('here') });
    expect(told).toHaveLength(1);
    const [key, stamp] = told[0]!;
    expect(stamp.node).toBe(1);

    // Attached on broker 2 earlier than here (the two attaches crossed): the one here stays.
    links.attachedElsewhere(key, { at: stamp.at - 1, node: 2 });
    links.attachedElsewhere(key, { at: stamp.at, node: 0 });
    expect(stolen).toEqual([]);
    // Attached there later: the one here goes, once.
    links.attachedElsewhere(key, { at: stamp.at, node: 2 });
    links.attachedElsewhere(key, { at: stamp.at + 5, node: 2 });
    expect(stolen).toEqual(['here']);
    expect(links.size).toBe(0);
  });

  it('leaves other names, directions and containers alone', () => {
    const told: string[] = [];
    const links = new AttachedLinks({ nodeId: 1, tell: (key) => told.push(key) });
    const stolen: string[] = [];
    links.attach(owner, 'receiver', 'in', { steal: () => stolen.push('receiver') });
    links.attach(owner, 'sender', 'in', { steal: () => stolen.push('sender') });
    links.attach({ ...owner, containerId: 'other' }, 'receiver', 'in', { steal: () => stolen.push('other') });
    expect(new Set(told).size).toBe(3);
    links.attachedElsewhere(told[0]!, { at: Date.now() + 1000, node: 2 });
    expect(stolen).toEqual(['receiver']);
    expect(links.size).toBe(2);
  });
});
