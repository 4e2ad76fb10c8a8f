import { z } from 'zod';
import type { PersistedGroup, PersistedMember } from './types.js';

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

const bytes = z.string().transform((text): Uint8Array => Buffer.from(text, 'base64'));
const timeout = z.number().int().min(0);

const storedMember = z.object({
  memberId: z.string().min(1),
  groupInstanceId: z.string().nullable(),
  clientId: z.string(),
  clientHost: z.string(),
  sessionTimeoutMs: timeout,
  rebalanceTimeoutMs: timeout,
  protocols: z.array(z.object({ name: z.string(), metadata: bytes })),
  assignment: bytes,
});

/** The two fields every record has, the only ones of records written before members were kept. */
const storedFence = z.object({ protocolType: z.string().nullable(), generationId: z.number().int() });

const storedGroup = storedFence.extend({
  state: z.enum(['Empty', 'Stable', 'PreparingRebalance']),
  protocolName: z.string().nullable(),
  leader: z.string().nullable(),
  members: z.array(storedMember),
});

/** Reads a stored group record; null when it is not one. */
export function decodeGroupRecord(encoded: Uint8Array): PersistedGroup | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(encoded));
  } catch {
    return null;
  }
  const fence = storedFence.safeParse(value);
  if (!fence.success) return null;
  const { protocolType, generationId } = fence.data;
  if ((value as { members?: unknown }).members === undefined)
    return emptyGroupRecord(protocolType, generationId);
  const stored = storedGroup.safeParse(value);
  if (!stored.success) return null;
  const { state, protocolName, leader, members } = stored.data;
  if (state === 'Empty' || members.length === 0) return emptyGroupRecord(protocolType, generationId);
  // Members hold assignments made for a chosen protocol: without one, this is no record of ours.
  if (protocolName === null) return null;
  return { state, protocolType, generationId, protocolName, leader, members };
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
