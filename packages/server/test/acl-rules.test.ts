import { describe, expect, it } from 'vitest';
import { decide, filterCovers, filtersOverlap, type AclRule } from '../src/acl/rules.js';

const user = (username: string | null) => ({ username, superuser: false });
let ids = 0;
const rule = (
  principal: string,
  action: AclRule['action'],
  topic: string,
  permission: AclRule['permission'],
): AclRule => ({
  id: String(++ids),
  principal,
  action,
  topic,
  permission,
});

describe('ACL topic filters', () => {
  it('covers a request only when every topic it can name is matched', () => {
    expect(filterCovers('a/#', 'a/b/c')).toBe(true);
    expect(filterCovers('a/#', 'a/+/c')).toBe(true);
    expect(filterCovers('a/#', 'a/#')).toBe(true);
    expect(filterCovers('a/#', 'a')).toBe(true);
    expect(filterCovers('a/+', 'a/b')).toBe(true);
    expect(filterCovers('a/+', 'a/+')).toBe(true);
    expect(filterCovers('a/+', 'a/#')).toBe(false);
    expect(filterCovers('a/b', 'a/+')).toBe(false);
    expect(filterCovers('a/+', 'a/b/c')).toBe(false);
    expect(filterCovers('#', '$SYS/x')).toBe(false);
    expect(filterCovers('$SYS/#', '$SYS/broker/+')).toBe(true);
  });

  it('overlaps when some topic is matched by both', () => {
    expect(filtersOverlap('secret/#', '#')).toBe(true);
    expect(filtersOverlap('secret/#', '+/x')).toBe(true);
    expect(filtersOverlap('a/+/c', 'a/b/+')).toBe(true);
    expect(filtersOverlap('a/b', 'a/c')).toBe(false);
    expect(filtersOverlap('a/+', 'a/b/c')).toBe(false);
    expect(filtersOverlap('a/b', 'a/b')).toBe(true);
    expect(filtersOverlap('$SYS/#', '#')).toBe(false);
    expect(filtersOverlap('#', '$SYS/+')).toBe(false);
  });
});

describe('ACL decisions', () => {
  const rules = [
    rule('alice', 'publish', 'orders/#', 'allow'),
    rule('alice', 'publish', 'orders/secret', 'deny'),
    rule('*', 'subscribe', 'public/#', 'allow'),
    rule('*', 'all', 'admin/#', 'deny'),
  ];

  it('lets a matching deny win, then a matching allow, then the default', () => {
    expect(decide(rules, user('alice'), 'publish', 'orders/1', 'deny')).toBe(true);
    expect(decide(rules, user('alice'), 'publish', 'orders/secret', 'allow')).toBe(false);
    expect(decide(rules, user('alice'), 'subscribe', 'orders/1', 'deny')).toBe(false);
    expect(decide(rules, user('alice'), 'subscribe', 'orders/1', 'allow')).toBe(true);
    expect(decide(rules, user('bob'), 'publish', 'orders/1', 'deny')).toBe(false);
  });

  it('applies * rules to everyone, anonymous clients included, and all to every action', () => {
    expect(decide(rules, user(null), 'subscribe', 'public/news', 'deny')).toBe(true);
    expect(decide(rules, user('bob'), 'describe', 'admin/users', 'allow')).toBe(false);
    expect(decide(rules, user(null), 'delete', 'admin/x', 'allow')).toBe(false);
  });

  it('judges a wildcard subscription as a whole: any overlap with a deny refuses it', () => {
    expect(decide(rules, user('bob'), 'subscribe', 'public/+', 'deny')).toBe(true);
    expect(decide(rules, user('bob'), 'subscribe', '#', 'deny')).toBe(false);
    expect(decide(rules, user('bob'), 'subscribe', '#', 'allow')).toBe(false); // overlaps admin/#
    expect(decide(rules, user('bob'), 'subscribe', 'news/#', 'allow')).toBe(true);
  });
});
