// Majority arithmetic over a set of voters.
import type { NodeId } from './types.js';

/** How many voters make a majority. */
export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest value that a majority of `voters` has reached, given each voter's value (e.g. the
 * highest index a majority holds). Infinity for no voters.
 */
export function majorityValue(voters: readonly NodeId[], valueOf: (id: NodeId) => number): number {
  if (voters.length === 0) return Infinity;
  const values = voters.map(valueOf).sort((a, b) => b - a);
  return values[quorumSize(voters.length) - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** The outcome of an election given the answers so far (true: granted). */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const quorum = quorumSize(voters.length);
  if (granted >= quorum) return 'won';
  if (rejected > voters.length - quorum) return 'lost';
  return 'pending';
}

/** Whether `ids` include a majority of `voters`. */
export function hasQuorum(voters: readonly NodeId[], ids: ReadonlySet<NodeId>): boolean {
  return voters.filter((id) => ids.has(id)).length >= quorumSize(voters.length);
}
