import { definePlugin } from '@robustmq/core';
import { parseSettings } from './config.js';
import { MqttPlugin } from './plugin.js';

export { parseSettings, type BridgeSettings, type BridgeTopic, type MqttSettings } from './config.js';
export { MqttPlugin } from './plugin.js';
export type {
  EnhancedAuthExchange,
  EnhancedAuthMethod,
  EnhancedAuthRequest,
  EnhancedAuthStep,
} from './enhanced-auth.js';
export {
  SubscriptionTree,
  type Match,
  type Subscription,
  type SubscriptionOptions,
} from './subscription-tree.js';

/**
 * The MQTT 3.1 / 3.1.1 / 5.0 protocol plugin. The server loads it by package name
 * (`protocols = ["@robustmq/protocol-mqtt"]`) and passes it the `[mqtt]` config section.
 */
export default definePlugin({
  name: 'mqtt',
  create: (config) => new MqttPlugin(parseSettings(config)),
});
