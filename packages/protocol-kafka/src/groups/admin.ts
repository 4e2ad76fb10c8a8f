import { ErrorCode, RobustMQError, type AdminItem, type AdminResource } from '@robustmq/core';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import { assignedPartitions } from './consumer-protocol.js';
import type { GroupService, OffsetResetTarget } from './group-service.js';

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

/** Refuses a group another broker of the cluster coordinates: its state lives there. */
async function coordinated(service: GroupService, groupId: string): Promise<void> {
  if ((await service.claim(groupId)) === E.none) return;
  throw new RobustMQError(
    ErrorCode.Conflict,
    `group ${groupId} is coordinated by another Kafka broker of the cluster: ask that node`,
  );
}

/**
 * The `groups` admin resource (`/api/v1/kafka/groups`): list and inspect consumer groups with their
 * lag, delete empty ones, and reset an empty group's offsets of a topic.
 */
export function groupsAdminResource(groups: () => GroupService): AdminResource {
  return {
    async list({ limit, after }) {
      const all = await groups().listGroups();
      const start = after === undefined ? 0 : all.findIndex((g) => g.groupId > after);
      const page = start < 0 ? [] : all.slice(start, start + limit);
      const items: AdminItem[] = page.map((g) => ({
        id: g.groupId,
        state: g.state,
        protocolType: g.protocolType,
        members: groups().coordinator.describe(g.groupId)?.members.length ?? 0,
      }));
      const more = start >= 0 && start + limit < all.length;
      return { items, next: more ? page[page.length - 1]!.groupId : null };
    },

    async get(id) {
      const service = groups();
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
        members: summary.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          assignment: summary.protocolType === 'consumer' ? (assignedPartitions(m.assignment) ?? []) : [],
        })),
        offsets: await service.lag(id),
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
