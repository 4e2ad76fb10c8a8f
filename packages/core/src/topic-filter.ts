import { ErrorCode, RobustMQError } from './errors.js';

/**
 * Checks a topic filter in the router's (MQTT's) syntax: non-empty, `+` and `#` only as whole
 * levels, `#` only last, no NUL character.
 */
export function validateTopicFilter(filter: string): void {
  const problem = filterProblem(filter);
  if (problem) {
    throw new RobustMQError(
      ErrorCode.InvalidArgument,
      `invalid topic filter ${JSON.stringify(filter)}: ${problem}`,
    );
  }
}

function filterProblem(filter: string): string | null {
  if (filter.length === 0) return 'empty';
  if (filter.includes('\u0000')) return 'contains NUL';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level === '#') {
      if (i !== levels.length - 1) return '# must be the last level';
    } else if (level !== '+' && (level.includes('#') || level.includes('+'))) {
      return 'wildcards must occupy a whole level';
    }
  }
  return null;
}

/**
 * Whether `topic` (a name, no wildcards) matches `filter`. A topic whose first level starts with
 * `$` is matched only by filters that spell that level out.
 */
export function topicMatchesFilter(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
