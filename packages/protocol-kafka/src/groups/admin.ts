import { ErrorCode, RobustMQError, type AdminItem, type AdminResource } from '@robustmq/core';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import { assignedPartitions } from './consumer-protocol.js';
import type { GroupService, OffsetResetTarget } from './group-service.js';
import type { PersistedMember } from './types.js';

function resetTarget(body: Readonly<Record<string, unknown>>): { topic: string; target: OffsetResetTarget } {
  const { topic, to, timestamp } = body;
  const extra = Object.keys(body).filter((k) => !['topic', 'to', 'timestamp'].includes(k));
  if (extra.length > 0) throw new RobustMQError(ErrorCode.InvalidArgument, `unknown field ${extra[0]}`);
  if (typeof topic !== 'string' || topic === '') {
    throw new RobustMQError(ErrorCode.InvalidArgument, 'topic must be a topic name');
  }
  if (to === 'earliest' || to === 'latest') return { topic, target: { to } };
  if (to === 'timestamp') {
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        'timestamp (ms since the epoch) is required with to=timestamp',
      );
    }
    return { topic, target: { to, timestamp } };
  }
  throw new RobustMQError(ErrorCode.InvalidArgument, 'to must be "earliest", "latest" or "timestamp"');
}

/** Refuses a group another broker of the cluster coordinates: its live state is there. */
async function coordinated(service: GroupService, groupId: string): Promise<void> {
  if ((await service.claim(groupId)) === E.none) return;
  const node = service.coordinatorOf(groupId);
  throw new RobustMQError(
    ErrorCode.Conflict,
    `group ${groupId} is coordinated by ${node === null ? 'no live Kafka broker now' : `the Kafka broker on node ${node}`}: ask that node`,
  );
}

/** A member as the admin API shows it, with the partitions assigned to it. */
function memberView(
  m: Pick<PersistedMember, 'memberId' | 'groupInstanceId' | 'clientId' | 'clientHost' | 'assignment'>,
  protocolType: string | null,
) {
  return {
    memberId: m.memberId,
    groupInstanceId: m.groupInstanceId,
    clientId: m.clientId,
    clientHost: m.clientHost,
    assignment: protocolType === 'consumer' ? (assignedPartitions(m.assignment) ?? []) : [],
  };
}

/**
 * The `groups` admin resource (`/api/v1/kafka/groups`): list and inspect consumer groups with their
 * lag, delete empty ones, and reset an empty group's offsets of a topic. In a cluster every node
 * lists every group: those another broker coordinates as that broker last stored them, with its
 * node id; deleting and resetting go to the coordinator's node.
 */
export function groupsAdminResource(groups: () => GroupService): AdminResource {
  return {
    async list({ limit, after }) {
      const service = groups();
      const here = (await service.listGroups()).map((g): AdminItem => ({
        id: g.groupId,
        state: g.state,
        protocolType: g.protocolType,
        members: service.coordinator.describe(g.groupId)?.members.length ?? 0,
        coordinator: service.coordinatorOf(g.groupId),
      }));
      const elsewhere = (await service.elsewhere()).map(({ groupId, record }): AdminItem => ({
        id: groupId,
        state: record?.state ?? 'Empty',
        protocolType: record?.protocolType ?? '',
        members: record?.members.length ?? 0,
        coordinator: service.coordinatorOf(groupId),
      }));
      const all = [...here, ...elsewhere].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const start = after === undefined ? 0 : all.findIndex((g) => g.id > after);
      const page = start < 0 ? [] : all.slice(start, start + limit);
      const more = start >= 0 && start + limit < all.length;
      return { items: page, next: more ? page[page.length - 1]!.id : null };
    },

    async get(id) {
      const service = groups();
      await service.ready();
      if (!service.coordinates(id)) {
        const stored = await service.storedGroup(id);
        if (!stored) return null;
        const { record } = stored;
        return {
          id,
          state: record?.state ?? 'Empty',
          protocolType: record?.protocolType ?? '',
          protocol: record?.protocolName ?? '',
          generation: record?.generationId ?? -1,
          leader: record?.leader ?? null,
          members: (record?.members ?? []).map((m) => memberView(m, record?.protocolType ?? null)),
          offsets: await service.lag(id),
          coordinator: service.coordinatorOf(id),
        };
      }
      await coordinated(service, id);
      const summary = service.coordinator.describe(id);
      if (!summary) return null;
      return {
        id,
        state: summary.state,
        protocolType: summary.protocolType,
        protocol: summary.protocolName,
        generation: summary.generationId,
        leader: summary.leader,
        members: summary.members.map((m) => memberView(m, summary.protocolType)),
        offsets: await service.lag(id),
        coordinator: service.coordinatorOf(id),
      };
    },

    async remove(id) {
      await coordinated(groups(), id);
      const errorCode = await groups().deleteGroup(id);
      if (errorCode === E.groupIdNotFound) return false;
      if (errorCode === E.nonEmptyGroup) {
        throw new RobustMQError(ErrorCode.Conflict, `group ${id} has members: stop its consumers first`);
      }
      return true;
    },

    actions: {
      async 'reset-offsets'(id, body) {
        const { topic, target } = resetTarget(body);
        await coordinated(groups(), id);
        const offsets = await groups().resetOffsets(id, topic, target);
        return { group: id, topic, offsets };
      },
    },
  };
}
