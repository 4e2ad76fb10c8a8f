import { topicMatchesFilter, type Action, type Principal } from '@robustmq/core';

/** What a rule can govern: one of the Authorizer's actions, or `all` of them. */
export const ACL_ACTIONS = ['publish', 'subscribe', 'create', 'delete', 'describe', 'alter', 'all'] as const;
export type AclAction = (typeof ACL_ACTIONS)[number];

export type AclPermission = 'allow' | 'deny';

/** One ACL rule as stored in the meta service under `/acls/<id>`. */
export interface AclRule {
  id: string;
  /** A user name, or `*` for every principal (anonymous clients included). */
  principal: string;
  action: AclAction;
  /** An MQTT-style topic filter (`+` one level, `#` the rest). */
  topic: string;
  permission: AclPermission;
}

/**
 * Whether every topic `request` (a topic name or a filter) can name is matched by `rule`: an allow
 * rule must cover the whole request, so `allow sensors/#` lets one subscribe to `sensors/+/temp`
 * but not to `#`.
 */
export function filterCovers(rule: string, request: string): boolean {
  const r = rule.split('/');
  const q = request.split('/');
  if (request.startsWith('$') && isWildcard(r[0])) return false;
  for (let i = 0; i < r.length; i++) {
    const level = r[i];
    if (level === '#') return true;
    if (i >= q.length) return false;
    const asked = q[i];
    if (asked === '#') return false;
    if (level === '+') continue;
    if (asked === '+' || asked !== level) return false;
  }
  return r.length === q.length;
}

/**
 * Whether some topic is matched by both `rule` and `request`: a deny rule applies as soon as the
 * request could reach one topic it forbids, so `deny secret/#` refuses a subscription to `#`.
 */
export function filtersOverlap(rule: string, request: string): boolean {
  const r = rule.split('/');
  const q = request.split('/');
  // Wildcards in the first level never reach `$` topics, from either side.
  if ((rule.startsWith('$') && isWildcard(q[0])) || (request.startsWith('$') && isWildcard(r[0]))) {
    return false;
  }
  for (let i = 0; ; i++) {
    const a = r[i];
    const b = q[i];
    if (a === '#' || b === '#') return true;
    if (a === undefined || b === undefined) return a === b;
    if (a !== '+' && b !== '+' && a !== b) return false;
  }
}

function isWildcard(level: string | undefined): boolean {
  return level === '+' || level === '#';
}

function applies(rule: AclRule, principal: Principal, action: Action): boolean {
  const who =
    rule.principal === '*' || (principal.username !== null && rule.principal === principal.username);
  return who && (rule.action === 'all' || rule.action === action);
}

/**
 * The ACL decision for a non-superuser: a matching deny wins, then a matching allow, and with no
 * match at all, `fallback` (`auth.acl_default`).
 */
export function decide(
  rules: Iterable<AclRule>,
  principal: Principal,
  action: Action,
  topic: string,
  fallback: AclPermission,
): boolean {
  const wildcard = topic.includes('+') || topic.includes('#');
  let allowed = false;
  for (const rule of rules) {
    if (!applies(rule, principal, action)) continue;
    if (rule.permission === 'deny') {
      const hit = wildcard ? filtersOverlap(rule.topic, topic) : topicMatchesFilter(rule.topic, topic);
      if (hit) return false;
    } else if (!allowed) {
      allowed = wildcard ? filterCovers(rule.topic, topic) : topicMatchesFilter(rule.topic, topic);
    }
  }
  return allowed || fallback === 'allow';
}
