import { shardName } from '@robustmq/core';
import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { DeleteRecordsRequest } from '../../codec/messages/delete-records-request.js';
import type { DeleteRecordsResponse } from '../../codec/messages/delete-records-response.js';
import type { ApiHandler } from '../handler.js';
import { authorized, kafkaErrorOf } from '../topics.js';

/** DeleteRecords: moves each partition's log start offset (-1 means the high watermark). */
export const handleDeleteRecords: ApiHandler<DeleteRecordsRequest, DeleteRecordsResponse> = async (
  request,
  context,
) => {
  const { storage } = context.broker.context;
  const topics = await Promise.all(
    request.topics.map(async (topic) => {
      const allowed = await authorized(context, 'delete', topic.name);
      const partitions = await Promise.all(
        topic.partitions.map(async (p) => {
          if (!allowed) {
            return {
              partitionIndex: p.partitionIndex,
              lowWatermark: -1n,
              errorCode: KafkaErrorCode.topicAuthorizationFailed,
            };
          }
          const shard = shardName(topic.name, p.partitionIndex);
          try {
            const offset = p.offset === -1n ? (await storage.shardInfo(shard)).nextOffset : Number(p.offset);
            if (offset < 0) {
              return {
                partitionIndex: p.partitionIndex,
                lowWatermark: -1n,
                errorCode: KafkaErrorCode.offsetOutOfRange,
              };
            }
            const lowWatermark = await storage.deleteBefore(shard, offset);
            return {
              partitionIndex: p.partitionIndex,
              lowWatermark: BigInt(lowWatermark),
              errorCode: KafkaErrorCode.none,
            };
          } catch (error) {
            return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: kafkaErrorOf(error) };
          }
        }),
      );
      return { name: topic.name, partitions };
    }),
  );
  return { throttleTimeMs: 0, topics };
};
