import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { SaslAuthenticateRequest } from '../../codec/messages/sasl-authenticate-request.js';
import type { SaslAuthenticateResponse } from '../../codec/messages/sasl-authenticate-response.js';
import { saslSession } from '../../sasl/index.js';
import type { ApiHandler } from '../handler.js';

/** SaslAuthenticate: one token of the exchange SaslHandshake (v1) started. */
export const handleSaslAuthenticate: ApiHandler<SaslAuthenticateRequest, SaslAuthenticateResponse> = async (
  request,
  context,
) => {
  if (!context.broker.settings.saslEnabled) {
    return {
      errorCode: E.illegalSaslState,
      errorMessage: 'SASL is not enabled',
      authBytes: Buffer.alloc(0),
      sessionLifetimeMs: 0n,
    };
  }
  const step = await saslSession(context).authenticate(request.authBytes);
  if (step.kind === 'failed') {
    return {
      errorCode: step.errorCode,
      errorMessage: step.message,
      authBytes: Buffer.alloc(0),
      sessionLifetimeMs: 0n,
    };
  }
  if (step.kind === 'done') {
    context.connection.principal = step.principal;
    context.connection.authenticated = true;
  }
  // A session lifetime of 0: the broker never asks clients to re-authenticate.
  return { errorCode: E.none, errorMessage: null, authBytes: step.response, sessionLifetimeMs: 0n };
};
