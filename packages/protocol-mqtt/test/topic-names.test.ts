import { describe, expect, it } from 'vitest';
import { parseFilter, topicFilterProblem, topicNameProblem } from '../src/topic-names.js';

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

  it('reads shared, queue and exclusive filters', () => {
    expect(parseFilter('$share/g/a/+', 10)).toEqual({ kind: 'shared', group: 'g', filter: 'a/+' });
    expect(parseFilter('$queue/a/#', 10)).toEqual({ kind: 'shared', group: '$queue', filter: 'a/#' });
    expect(parseFilter('$exclusive/a', 10)).toEqual({ kind: 'exclusive', filter: 'a' });
    expect(parseFilter('$SYS/a', 10)).toEqual({ kind: 'plain', filter: '$SYS/a' });
    expect(parseFilter('$share/g', 10)).toMatch(/topic filter after its group/);
    expect(parseFilter('$share//a', 10)).toMatch(/group name/);
    expect(parseFilter('$share/g+/a', 10)).toMatch(/group name/);
    expect(parseFilter('$share/g/a#', 10)).toMatch(/whole level/);
    expect(parseFilter('$exclusive/', 10)).toMatch(/empty/);
  });
});
