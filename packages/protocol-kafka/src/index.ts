import { definePlugin } from '@robustmq/core';
import { parseSettings } from './config.js';
import { KafkaPlugin } from './plugin.js';

export { parseSettings, SASL_MECHANISMS, type KafkaSettings, type SaslMechanism } from './config.js';
export { KafkaPlugin } from './plugin.js';
export type {
  ApiHandler,
  ConnectionState,
  KafkaBroker,
  ProducedBatch,
  ProducerCheckResult,
  ProducerStateCheck,
  RequestContext,
} from './broker/handler.js';

/**
 * The Kafka protocol plugin. The server loads it by package name
 * (`protocols = ["@robustmq/protocol-kafka"]`) and passes it the `[kafka]` config section.
 */
export default definePlugin({
  name: 'kafka',
  create: (config) => new KafkaPlugin(parseSettings(config)),
});
