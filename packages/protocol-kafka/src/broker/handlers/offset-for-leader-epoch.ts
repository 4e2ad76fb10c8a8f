import { shardName } from '@robustmq/core';
import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { OffsetForLeaderEpochRequest } from '../../codec/messages/offset-for-leader-epoch-request.js';
import type { OffsetForLeaderEpochResponse } from '../../codec/messages/offset-for-leader-epoch-response.js';
import type { ApiHandler } from '../handler.js';
import { LEADER_EPOCH } from '../partition-writer.js';
import { partitionFailure } from '../errors.js';
import { partitionRefusal } from '../topics.js';

/**
 * OffsetForLeaderEpoch: every partition has had one leader epoch, so the end offset of any epoch
 * up to it is the high watermark; a later epoch is unknown.
 */
export const handleOffsetForLeaderEpoch: ApiHandler<
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponse
> = async (request, context) => {
  const { storage } = context.broker.context;
  const topics = await Promise.all(
    request.topics.map(async (topic) => {
      const refused = await partitionRefusal(context, 'describe', topic.topic, 'read');
      const partitions = await Promise.all(
        topic.partitions.map(async (p) => {
          const answer = (errorCode: number, leaderEpoch: number, endOffset: number) => ({
            errorCode,
            partition: p.partition,
            leaderEpoch,
            endOffset: BigInt(endOffset),
          });
          if (refused !== KafkaErrorCode.none) return answer(refused, -1, -1);
          if ((p.currentLeaderEpoch ?? -1) > LEADER_EPOCH)
            return answer(KafkaErrorCode.unknownLeaderEpoch, -1, -1);
          const shard = shardName(topic.topic, p.partition);
          try {
            const info = await storage.shardInfo(shard);
            if (p.leaderEpoch > LEADER_EPOCH) return answer(KafkaErrorCode.none, -1, -1);
            return answer(KafkaErrorCode.none, LEADER_EPOCH, info.nextOffset);
          } catch (error) {
            return answer(partitionFailure(context, error, 'read', { shard }), -1, -1);
          }
        }),
      );
      return { topic: topic.topic, partitions };
    }),
  );
  return { throttleTimeMs: 0, topics };
};
