import { describe, expect, it } from 'vitest';
import { RobustMQError, topicMatchesFilter, validateTopicFilter } from '../src/index.js';

describe('topic filters', () => {
  it.each([
    ['a/b/c', 'a/b/c', true],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+', 'a/b', false],
    ['+/+', '/a', true],
    ['#', '$SYS/uptime', false],
    ['+/uptime', '$SYS/uptime', false],
    ['$SYS/#', '$SYS/uptime', true],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatchesFilter(filter, topic)).toBe(expected);
  });

  it.each(['', 'a/#/b', 'a/b#', 'a+/b', 'a\u0000b'])('rejects %j', (filter) => {
    expect(() => validateTopicFilter(filter)).toThrow(RobustMQError);
  });

  it.each(['#', '+', 'a/+/b/#', '/', '$share/g/a'])('accepts %j', (filter) => {
    expect(() => validateTopicFilter(filter)).not.toThrow();
  });
});
