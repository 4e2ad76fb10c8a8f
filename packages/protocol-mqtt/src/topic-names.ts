const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;

/** Why `topic` cannot be published to (empty, a wildcard, too deep), or null when it can. */
export function topicNameProblem(topic: string, maxLevels: number): string | null {
  if (topic.length === 0) return 'topic name is empty';
  let levels = 1;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === SLASH) levels++;
    else if (c === PLUS || c === HASH) return 'topic name contains a wildcard';
  }
  return levels > maxLevels ? `topic name has more than ${maxLevels} levels` : null;
}

/**
 * Why `filter` cannot be subscribed to, or null: `+` and `#` must fill a whole level, `#` only
 * as the last one.
 */
export function topicFilterProblem(filter: string, maxLevels: number): string | null {
  if (filter.length === 0) return 'topic filter is empty';
  let levels = 1;
  let levelStart = 0;
  for (let i = 0; i <= filter.length; i++) {
    const c = i < filter.length ? filter.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      if (i < filter.length) levels++;
      levelStart = i + 1;
    } else if (c === PLUS || c === HASH) {
      const alone = i === levelStart && (i + 1 === filter.length || filter.charCodeAt(i + 1) === SLASH);
      if (!alone) return 'a wildcard must fill a whole level';
      if (c === HASH && i + 1 !== filter.length) return '# must be the last level';
    }
  }
  return levels > maxLevels ? `topic filter has more than ${maxLevels} levels` : null;
}

/** A SUBSCRIBE filter as the broker reads it: plain, shared by a group, or exclusive. */
export type ParsedFilter =
  | { readonly kind: 'plain'; readonly filter: string }
  | { readonly kind: 'shared'; readonly group: string; readonly filter: string }
  | { readonly kind: 'exclusive'; readonly filter: string };

const SHARE = '$share/';
const QUEUE = '$queue/';
const EXCLUSIVE = '$exclusive/';

/**
 * Reads `$share/{group}/{filter}` (MQTT 5 section 4.8.2), `$queue/{filter}` (the group `$queue`)
 * and `$exclusive/{filter}`; anything else is a plain filter. Returns why it is invalid instead
 * when it is.
 */
export function parseFilter(full: string, maxLevels: number): ParsedFilter | string {
  let parsed: ParsedFilter;
  if (full.startsWith(SHARE)) {
    const slash = full.indexOf('/', SHARE.length);
    const group = full.slice(SHARE.length, slash < 0 ? full.length : slash);
    if (group.length === 0 || group.includes('+') || group.includes('#')) {
      return 'a shared subscription needs a group name without wildcards';
    }
    if (slash < 0) return 'a shared subscription needs a topic filter after its group';
    parsed = { kind: 'shared', group, filter: full.slice(slash + 1) };
  } else if (full.startsWith(QUEUE)) {
    parsed = { kind: 'shared', group: '$queue', filter: full.slice(QUEUE.length) };
  } else if (full.startsWith(EXCLUSIVE)) {
    parsed = { kind: 'exclusive', filter: full.slice(EXCLUSIVE.length) };
  } else {
    parsed = { kind: 'plain', filter: full };
  }
  return topicFilterProblem(parsed.filter, maxLevels) ?? parsed;
}
