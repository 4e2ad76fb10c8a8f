// Membership changes: how one change alters the membership, when a change is acceptable, and its
// encoding as the data of a `conf` log entry.
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { ByteReader, ByteWriter } from '../bytes.js';
import type { ConfChange, ConfState, NodeId } from './types.js';

const FORMAT_VERSION = 1;
const KINDS = ['addVoter', 'addLearner', 'removeNode'] as const;

const sorted = (ids: Iterable<NodeId>): NodeId[] => [...new Set(ids)].sort((a, b) => a - b);

/** A membership from lists in any order. */
export function confState(voters: Iterable<NodeId>, learners: Iterable<NodeId> = []): ConfState {
  const voterList = sorted(voters);
  return { voters: voterList, learners: sorted(learners).filter((id) => !voterList.includes(id)) };
}

export const EMPTY_CONF: ConfState = { voters: [], learners: [] };

/** Whether `id` is a valid node id: a positive safe integer. */
export function isNodeId(id: unknown): id is NodeId {
  return typeof id === 'number' && Number.isSafeInteger(id) && id > 0;
}

/**
 * Why `change` may not be made to `conf`, or null when it may. A change must do something, and must
 * leave at least one voter.
 */
export function invalidConfChangeReason(conf: ConfState, change: ConfChange): string | null {
  const { type, nodeId } = change;
  if (!KINDS.includes(type)) return `unknown membership change ${String(type)}`;
  if (!isNodeId(nodeId)) return `node id must be a positive integer, got ${String(nodeId)}`;
  const isVoter = conf.voters.includes(nodeId);
  const isLearner = conf.learners.includes(nodeId);
  if (type === 'addVoter' && isVoter) return `node ${nodeId} is already a voter`;
  if (type === 'addLearner' && isLearner) return `node ${nodeId} is already a learner`;
  if (type === 'removeNode' && !isVoter && !isLearner) return `node ${nodeId} is not a member`;
  if (type !== 'addVoter' && isVoter && conf.voters.length === 1) return `node ${nodeId} is the last voter`;
  return null;
}

/** The membership after `change`; an invalid change leaves it as it is, the same on every replica. */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  if (invalidConfChangeReason(conf, change) !== null) return conf;
  const { nodeId } = change;
  const voters = conf.voters.filter((id) => id !== nodeId);
  const learners = conf.learners.filter((id) => id !== nodeId);
  if (change.type === 'addVoter') voters.push(nodeId);
  if (change.type === 'addLearner') learners.push(nodeId);
  return confState(voters, learners);
}

/** Encodes a membership change as `conf` entry data. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const kind = KINDS.indexOf(change.type);
  if (kind < 0 || !isNodeId(change.nodeId)) {
    throw new RobustMQError(
      ErrorCode.InvalidArgument,
      `malformed membership change ${JSON.stringify(change)}`,
    );
  }
  const writer = new ByteWriter(16);
  writer.u8(FORMAT_VERSION);
  writer.u8(kind);
  writer.u53(change.nodeId);
  return writer.finish().slice();
}

/** Decodes what {@link encodeConfChange} wrote; malformed bytes throw `CORRUPT`. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const reader = new ByteReader(bytes, 'membership change');
  const version = reader.u8();
  if (version !== FORMAT_VERSION) reader.fail(`unknown format version ${version}`);
  const kind = reader.u8();
  const nodeId = reader.u53();
  reader.end();
  const type = KINDS[kind];
  if (type === undefined) return reader.fail(`unknown change kind ${kind}`);
  if (nodeId === 0) return reader.fail('node id 0');
  return { type, nodeId };
}

/** Renders a membership as `voters=(1 2 3) learners=(4)`, for logs and test scripts. */
export function formatConfState(conf: ConfState): string {
  const learners = conf.learners.length > 0 ? ` learners=(${conf.learners.join(' ')})` : '';
  return `voters=(${conf.voters.join(' ')})${learners}`;
}
