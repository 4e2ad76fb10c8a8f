// Text renderings of Raft values for the interaction scripts: stable, compact, one line each.
import type { Entry, Message, Ready, Snapshot } from '../../../src/index.js';
import { decodeConfChange, formatConfState } from '../../../src/index.js';

const decoder = new TextDecoder();

export function formatEntry(entry: Entry): string {
  if (entry.type === 'conf') {
    const change = decodeConfChange(entry.data);
    return `${entry.term}/${entry.index} conf:${change.type}(${change.nodeId})`;
  }
  return `${entry.term}/${entry.index} ${JSON.stringify(decoder.decode(entry.data))}`;
}

export function formatEntries(entries: readonly Entry[]): string {
  return `[${entries.map(formatEntry).join(', ')}]`;
}

export function formatSnapshot(snapshot: Snapshot): string {
  const { index, term, conf } = snapshot.metadata;
  return `${term}/${index} ${formatConfState(conf)}`;
}

export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'append':
      return `${head} log=${m.logTerm}/${m.index} commit=${m.commit}${m.entries.length > 0 ? ` entries=${formatEntries(m.entries)}` : ''}`;
    case 'appendResponse':
      return m.reject
        ? `${head} rejected index=${m.index} hint=${m.logTerm}/${m.rejectHint}`
        : `${head} index=${m.index}`;
    case 'vote':
    case 'preVote':
      return `${head} log=${m.logTerm}/${m.index}${m.transfer ? ' transfer' : ''}`;
    case 'voteResponse':
    case 'preVoteResponse':
      return `${head} ${m.reject ? 'rejected' : 'granted'}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.context !== '' ? ` context=${m.context}` : ''}`;
    case 'heartbeatResponse':
      return `${head}${m.context !== '' ? ` context=${m.context}` : ''}`;
    case 'snapshot':
      return `${head} snapshot=${formatSnapshot(m.snapshot)}`;
    case 'timeoutNow':
      return head;
    case 'readIndex':
      return `${head} context=${m.context}`;
    case 'readIndexResponse':
      return `${head} index=${m.index} context=${m.context}`;
    case 'transferLeader':
      return `${head} target=${m.target}`;
  }
}

/** The Ready's contents, one item a line, skipping empty parts. */
export function formatReady(ready: Ready): string[] {
  const lines: string[] = [];
  if (ready.softState !== undefined)
    lines.push(`State: ${ready.softState.role} leader=${ready.softState.leader}`);
  if (ready.hardState !== undefined) {
    const { term, vote, commit } = ready.hardState;
    lines.push(`HardState term=${term} vote=${vote} commit=${commit}`);
  }
  if (ready.snapshot !== undefined) lines.push(`Snapshot ${formatSnapshot(ready.snapshot)}`);
  if (ready.entries.length > 0) lines.push('Entries:', ...ready.entries.map((e) => `  ${formatEntry(e)}`));
  if (ready.committedEntries.length > 0) {
    lines.push('CommittedEntries:', ...ready.committedEntries.map((e) => `  ${formatEntry(e)}`));
  }
  if (ready.messages.length > 0)
    lines.push('Messages:', ...ready.messages.map((m) => `  ${formatMessage(m)}`));
  if (ready.readStates.length > 0) {
    lines.push('ReadStates:', ...ready.readStates.map((r) => `  index=${r.index} context=${r.context}`));
  }
  return lines;
}
