import type { AlterConfigsRequest } from '../../codec/messages/alter-configs-request.js';
import type { AlterConfigsResponse } from '../../codec/messages/alter-configs-response.js';
import { alterTopicConfigs, refuseDuplicateKeys } from '../config-resources.js';
import type { ApiHandler } from '../handler.js';

/** AlterConfigs: replaces a topic's configs with those given; the rest go back to defaults. */
export const handleAlterConfigs: ApiHandler<AlterConfigsRequest, AlterConfigsResponse> = async (
  request,
  context,
) => {
  const responses = [];
  for (const resource of request.resources) {
    responses.push(
      await alterTopicConfigs(context, resource, request.validateOnly, () => {
        refuseDuplicateKeys(resource.configs);
        const wanted = new Map<string, string>();
        for (const config of resource.configs)
          if (config.value !== null) wanted.set(config.name, config.value);
        return wanted;
      }),
    );
  }
  return { throttleTimeMs: 0, responses };
};
