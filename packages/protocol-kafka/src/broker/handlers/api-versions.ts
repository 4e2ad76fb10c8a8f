import type { ApiVersionsRequest } from '../../codec/messages/api-versions-request.js';
import type { ApiVersionsResponse } from '../../codec/messages/api-versions-response.js';
import { DISPATCH } from '../dispatch.js';
import type { ApiHandler } from '../handler.js';

/** The version list, from the dispatch table. */
export function apiVersionsBody(): ApiVersionsResponse {
  return {
    errorCode: 0,
    apiKeys: [...DISPATCH.values()].map((entry) => ({
      apiKey: entry.apiKey,
      minVersion: entry.minVersion,
      maxVersion: entry.maxVersion,
    })),
    throttleTimeMs: 0,
  };
}

export const handleApiVersions: ApiHandler<ApiVersionsRequest, ApiVersionsResponse> = async () =>
  Promise.resolve(apiVersionsBody());
