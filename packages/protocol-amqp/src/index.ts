import { definePlugin } from '@robustmq/core';
import { parseSettings } from './config.js';
import { AmqpPlugin } from './plugin.js';

export { parseSettings, type AmqpSettings, type AddressKind } from './config.js';
export { AmqpPlugin } from './plugin.js';
export { AmqpHeader } from './message-format.js';

/**
 * The AMQP 1.0 protocol plugin. The server loads it by package name
 * (`protocols = ["@robustmq/protocol-amqp"]`) and passes it the `[amqp]` config section.
 */
export default definePlugin({
  name: 'amqp',
  create: (config) => new AmqpPlugin(parseSettings(config)),
});
