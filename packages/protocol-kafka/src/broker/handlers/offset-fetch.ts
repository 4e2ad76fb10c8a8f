import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { OffsetFetchRequest } from '../../codec/messages/offset-fetch-request.js';
import type { OffsetFetchResponse } from '../../codec/messages/offset-fetch-response.js';
import { groupService, type GroupService } from '../../groups/index.js';
import { coordinatorErrorOf } from '../errors.js';
import type { ApiHandler, RequestContext } from '../handler.js';
import { authorized } from '../topics.js';

/**
 * One group's offsets. Topics the principal may not consume answer TOPIC_AUTHORIZATION_FAILED
 * when named, and are left out of the all-topics form.
 */
async function fetchGroup(
  context: RequestContext,
  groups: GroupService,
  groupId: string,
  topics: readonly { name: string; partitionIndexes: number[] }[] | null,
) {
  const fetched = await groups.fetchOffsets(groupId, topics);
  const answered = [];
  for (const t of fetched) {
    const allowed = await authorized(context, 'subscribe', t.name);
    if (!allowed && topics === null) continue;
    answered.push({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        committedOffset: allowed ? BigInt(p.committedOffset) : -1n,
        committedLeaderEpoch: allowed ? p.committedLeaderEpoch : -1,
        metadata: allowed ? p.metadata : '',
        errorCode: allowed ? p.errorCode : E.topicAuthorizationFailed,
      })),
    });
  }
  return answered;
}

/**
 * OffsetFetch: committed offsets (-1 where none), for named partitions or (null topics, v2+) all of
 * them; v8+ asks for several groups at once.
 */
export const handleOffsetFetch: ApiHandler<OffsetFetchRequest, OffsetFetchResponse> = async (
  request,
  context,
) => {
  const groups = groupService(context.broker);
  if (context.apiVersion >= 8) {
    const answered = [];
    for (const group of request.groups ?? []) {
      try {
        const refused = await groups.claim(group.groupId);
        answered.push({
          groupId: group.groupId,
          topics: refused !== E.none ? [] : await fetchGroup(context, groups, group.groupId, group.topics),
          errorCode: refused,
        });
      } catch (error) {
        context.logger.error({ err: error, group: group.groupId }, 'offset fetch failed');
        answered.push({ groupId: group.groupId, topics: [], errorCode: coordinatorErrorOf(error) });
      }
    }
    return { throttleTimeMs: 0, groups: answered };
  }
  const refused = await groups.claim(request.groupId ?? '');
  if (refused !== E.none) {
    // v1 has no top-level error code: each named partition carries it.
    const topics = (request.topics ?? []).map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex) => ({
        partitionIndex,
        committedOffset: -1n,
        committedLeaderEpoch: -1,
        metadata: '',
        errorCode: refused,
      })),
    }));
    return { throttleTimeMs: 0, topics, errorCode: refused };
  }
  const topics = await fetchGroup(context, groups, request.groupId ?? '', request.topics ?? null);
  return { throttleTimeMs: 0, topics, errorCode: E.none };
};
