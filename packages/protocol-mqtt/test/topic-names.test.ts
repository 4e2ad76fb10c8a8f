import { describe, expect, it } from 'vitest';
import { isSharedFilter, topicFilterProblem, topicNameProblem } from '../src/topic-names.js';

describe('topic names and filters', () => {
  it('accepts names without wildcards up to the level limit', () => {
    expect(topicNameProblem('a/b/c', 3)).toBeNull();
    expect(topicNameProblem('/', 2)).toBeNull();
    expect(topicNameProblem('a/b/c/d', 3)).toMatch(/more than 3 levels/);
    expect(topicNameProblem('', 3)).toMatch(/empty/);
    expect(topicNameProblem('a/+', 3)).toMatch(/wildcard/);
    expect(topicNameProblem('a/#', 3)).toMatch(/wildcard/);
    expect(topicNameProblem('a/b#', 3)).toMatch(/wildcard/);
  });

  it('accepts wildcards only as whole levels, # only last', () => {
    for (const ok of ['#', '+', 'a/+', '+/+/#', 'a//#', '$SYS/#', '/+'])
      expect(topicFilterProblem(ok, 10)).toBeNull();
    for (const bad of ['a/#/b', 'a#', 'a/b+', '+a', '##', 'a/++'])
      expect(topicFilterProblem(bad, 10)).not.toBeNull();
    expect(topicFilterProblem('', 10)).toMatch(/empty/);
    expect(topicFilterProblem('a/b/c', 2)).toMatch(/more than 2 levels/);
  });

  it('recognises shared subscriptions', () => {
    expect(isSharedFilter('$share/g/a')).toBe(true);
    expect(isSharedFilter('$queue/a')).toBe(true);
    expect(isSharedFilter('$SYS/a')).toBe(false);
  });
});
