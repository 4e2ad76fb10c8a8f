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

/** Whether `filter` names a shared subscription (`$share/group/filter`) or a queue (`$queue/`). */
export function isSharedFilter(filter: string): boolean {
  return filter.startsWith('$share/') || filter.startsWith('$queue/');
}
