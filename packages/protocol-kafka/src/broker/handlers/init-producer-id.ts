import type { InitProducerIdRequest } from '../../codec/messages/init-producer-id-request.js';
import type { InitProducerIdResponse } from '../../codec/messages/init-producer-id-response.js';
import { producerService } from '../../producers/index.js';
import type { ApiHandler } from '../handler.js';

/** InitProducerId: a durable producer id and epoch for an idempotent producer; transactional ids are refused. */
export const handleInitProducerId: ApiHandler<InitProducerIdRequest, InitProducerIdResponse> = async (
  request,
  context,
) => {
  const outcome = await producerService(context.broker).initProducerId({
    transactionalId: request.transactionalId,
  });
  return { throttleTimeMs: 0, ...outcome };
};
