import type { GroupProtocol, PersistedGroup, PersistedMember } from './types.js';

/*
 * A group's record in the meta store is JSON, with bytes (subscriptions, assignments) in base64:
 *
 *   { "state": "Stable", "protocolType": "consumer", "generationId": 4, "protocolName": "range",
 *     "leader": "<member id>",
 *     "members": [{ "memberId", "groupInstanceId", "clientId", "clientHost", "sessionTimeoutMs",
 *                   "rebalanceTimeoutMs", "protocols": [{ "name", "metadata" }], "assignment" }] }
 *
 * Records written before members were kept hold only protocolType and generationId; they load as
 * Empty groups. Brokers of that time read only those two fields, so they load new records as Empty.
 */

/** An Empty group's record: no members, only what fences members of older generations. */
export function emptyGroupRecord(protocolType: string | null, generationId: number): PersistedGroup {
  return { state: 'Empty', protocolType, generationId, protocolName: null, leader: null, members: [] };
}

const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

export function encodeGroupRecord(group: PersistedGroup): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      ...group,
      members: group.members.map((m) => ({
        ...m,
        protocols: m.protocols.map((p) => ({ name: p.name, metadata: base64(p.metadata) })),
        assignment: base64(m.assignment),
      })),
    }),
  );
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isStringOrNull = (value: unknown): value is string | null =>
  value === null || typeof value === 'string';
const isTimeout = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function decodeBytes(value: unknown): Uint8Array | null {
  return typeof value === 'string' ? Buffer.from(value, 'base64') : null;
}

function decodeProtocol(value: unknown): GroupProtocol | null {
  if (!isObject(value) || typeof value.name !== 'string') return null;
  const metadata = decodeBytes(value.metadata);
  return metadata && { name: value.name, metadata };
}

function decodeMember(value: unknown): PersistedMember | null {
  if (!isObject(value)) return null;
  const { memberId, groupInstanceId, clientId, clientHost, sessionTimeoutMs, rebalanceTimeoutMs } = value;
  if (
    typeof memberId !== 'string' ||
    memberId === '' ||
    !isStringOrNull(groupInstanceId) ||
    typeof clientId !== 'string' ||
    typeof clientHost !== 'string' ||
    !isTimeout(sessionTimeoutMs) ||
    !isTimeout(rebalanceTimeoutMs) ||
    !Array.isArray(value.protocols)
  ) {
    return null;
  }
  const protocols = value.protocols.map(decodeProtocol);
  const assignment = decodeBytes(value.assignment);
  if (protocols.some((p) => p === null) || assignment === null) return null;
  return {
    memberId,
    groupInstanceId,
    clientId,
    clientHost,
    sessionTimeoutMs,
    rebalanceTimeoutMs,
    protocols: protocols as GroupProtocol[],
    assignment,
  };
}

/** Reads a stored group record; null when it is not one. */
export function decodeGroupRecord(bytes: Uint8Array): PersistedGroup | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  if (!isObject(value) || !isStringOrNull(value.protocolType) || !Number.isSafeInteger(value.generationId)) {
    return null;
  }
  const { protocolType, generationId } = value as { protocolType: string | null; generationId: number };
  if (value.members === undefined) return emptyGroupRecord(protocolType, generationId);
  const { state, protocolName, leader } = value;
  if (
    (state !== 'Empty' && state !== 'Stable' && state !== 'PreparingRebalance') ||
    !isStringOrNull(protocolName) ||
    !isStringOrNull(leader) ||
    !Array.isArray(value.members)
  ) {
    return null;
  }
  const members = value.members.map(decodeMember);
  if (members.some((m) => m === null)) return null;
  if (state === 'Empty' || members.length === 0) return emptyGroupRecord(protocolType, generationId);
  // Members hold assignments made for a chosen protocol: without one, this is no record of ours.
  if (protocolName === null) return null;
  return { state, protocolType, generationId, protocolName, leader, members: members as PersistedMember[] };
}

/**
 * The record once a member has left or expired: the others keep their assignments until the
 * rebalance it causes, which a restart starts again. Null when the record does not hold the member.
 */
export function recordWithout(record: PersistedGroup, memberId: string): PersistedGroup | null {
  if (!record.members.some((m) => m.memberId === memberId)) return null;
  const members = record.members.filter((m) => m.memberId !== memberId);
  if (members.length === 0) return emptyGroupRecord(record.protocolType, record.generationId);
  return {
    ...record,
    state: 'PreparingRebalance',
    leader: record.leader === memberId ? null : record.leader,
    members,
  };
}

/**
 * The record once a static member rejoined with a new member id. It keeps the protocols and
 * assignment of the member it replaces: those belong to the stored generation. Null when the record
 * does not hold the old id.
 */
export function recordWithReplacement(
  record: PersistedGroup,
  oldMemberId: string,
  replacement: PersistedMember,
): PersistedGroup | null {
  const old = record.members.find((m) => m.memberId === oldMemberId);
  if (!old) return null;
  return {
    ...record,
    leader: record.leader === oldMemberId ? replacement.memberId : record.leader,
    members: record.members.map((m) =>
      m === old ? { ...replacement, protocols: old.protocols, assignment: old.assignment } : m,
    ),
  };
}
