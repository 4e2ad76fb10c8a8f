import { shardName } from '@robustmq/core';
import { KafkaErrorCode } from '../../codec/error-codes.js';
import type { DeleteRecordsRequest } from '../../codec/messages/delete-records-request.js';
import type { DeleteRecordsResponse } from '../../codec/messages/delete-records-response.js';
import type { ApiHandler } from '../handler.js';
import { partitionFailure } from '../errors.js';
import { partitionRefusal } from '../topics.js';

/** DeleteRecords: moves each partition's log start offset (-1 means the high watermark). */
export const handleDeleteRecords: ApiHandler<DeleteRecordsRequest, DeleteRecordsResponse> = async (
  request,
  context,
) => {
  const { storage } = context.broker.context;
  const topics = await Promise.all(
    request.topics.map(async (topic) => {
      const refused = await partitionRefusal(context, 'delete', topic.name, 'write');
      const partitions = await Promise.all(
        topic.partitions.map(async (p) => {
          if (refused !== KafkaErrorCode.none) {
            return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: refused };
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
            const errorCode = partitionFailure(context, error, 'write', { shard });
            return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode };
          }
        }),
      );
      return { name: topic.name, partitions };
    }),
  );
  return { throttleTimeMs: 0, topics };
};
