import type { IncrementalAlterConfigsRequest } from '../../codec/messages/incremental-alter-configs-request.js';
import type { IncrementalAlterConfigsResponse } from '../../codec/messages/incremental-alter-configs-response.js';
import { alterTopicConfigs, InvalidConfigRequest, refuseDuplicateKeys } from '../config-resources.js';
import type { ApiHandler } from '../handler.js';
import { brokerDefaultOf, isListConfig, TopicConfigError } from '../topic-configs.js';

const SET = 0;
const DELETE = 1;
const APPEND = 2;
const SUBTRACT = 3;

/** IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on a topic's configs. */
export const handleIncrementalAlterConfigs: ApiHandler<
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse
> = async (request, context) => {
  const responses = [];
  for (const resource of request.resources) {
    responses.push(
      await alterTopicConfigs(context, resource, request.validateOnly, (current) => {
        refuseDuplicateKeys(resource.configs);
        for (const config of resource.configs) {
          if (![SET, DELETE, APPEND, SUBTRACT].includes(config.configOperation)) {
            throw new InvalidConfigRequest(`Unknown alter configs operation ${config.configOperation}`);
          }
          if (
            (config.configOperation === APPEND || config.configOperation === SUBTRACT) &&
            !isListConfig(config.name)
          ) {
            const verb = config.configOperation === APPEND ? 'append' : 'subtract';
            throw new TopicConfigError(`Config value ${verb} is not allowed for config key: ${config.name}`);
          }
          // As in Kafka, a list not set on the topic is edited from its default.
          const currentList = current.get(config.name) ?? brokerDefaultOf(config.name)?.value ?? '';
          const list = currentList.split(',').filter((item) => item.length > 0);
          const items = (config.value ?? '').split(',').filter((item) => item.length > 0);
          switch (config.configOperation) {
            case SET:
              if (config.value === null) throw new TopicConfigError(`${config.name}: SET needs a value`);
              current.set(config.name, config.value);
              break;
            case DELETE:
              current.delete(config.name);
              break;
            case APPEND:
              current.set(config.name, [...list, ...items.filter((item) => !list.includes(item))].join(','));
              break;
            case SUBTRACT:
              current.set(config.name, list.filter((item) => !items.includes(item)).join(','));
              break;
          }
        }
        return current;
      }),
    );
  }
  return { throttleTimeMs: 0, responses };
};
