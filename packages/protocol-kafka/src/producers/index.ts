import type { KafkaBroker, ProducerStateCheck } from '../broker/handler.js';
import { ProducerService } from './producer-service.js';

export { ProducerService, type InitProducerIdInput, type InitProducerIdOutcome } from './producer-service.js';
export { ProducerStateTable } from './producer-state.js';
export { ProducerIdAllocator, PRODUCER_ID_KEY } from './producer-ids.js';

/** The broker's producer service (ids and sequence state), created on first use. */
export function producerService(broker: KafkaBroker): ProducerService {
  return broker.service('producers', () => {
    const service = new ProducerService(
      broker.context.meta,
      broker.context.storage,
      broker.logger.child({ component: 'producers' }),
    );
    service.followLeadership(
      (listener) => broker.cluster.onChange(listener),
      (topic, partition) => broker.cluster.leads(topic, partition),
    );
    return service;
  });
}

/** What Produce calls for batches with a producer id. */
export function producerStateCheck(broker: KafkaBroker): ProducerStateCheck {
  return producerService(broker).state;
}
