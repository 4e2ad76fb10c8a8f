import { KafkaErrorCode as E } from '../../codec/error-codes.js';
import type { SaslHandshakeRequest } from '../../codec/messages/sasl-handshake-request.js';
import type { SaslHandshakeResponse } from '../../codec/messages/sasl-handshake-response.js';
import { saslSession } from '../../sasl/index.js';
import { CloseConnection, type ApiHandler } from '../handler.js';

/**
 * SaslHandshake: chooses the mechanism. With v1 SaslAuthenticate requests follow; with v0 the
 * client sends raw SASL tokens, handled here until the exchange ends.
 */
export const handleSaslHandshake: ApiHandler<SaslHandshakeRequest, SaslHandshakeResponse> = (
  request,
  context,
) => {
  const { settings } = context.broker;
  if (!settings.saslEnabled) {
    return Promise.resolve({ errorCode: E.illegalSaslState, mechanisms: [] });
  }
  const session = saslSession(context);
  const errorCode = session.handshake(request.mechanism);
  if (errorCode === E.none && context.apiVersion === 0) {
    const connection = context.connection;
    connection.rawSasl = async (token) => {
      const step = await session.authenticate(token);
      if (step.kind === 'failed') {
        connection.rawSasl = null;
        throw new CloseConnection(step.message);
      }
      if (step.kind === 'done') {
        connection.rawSasl = null;
        connection.principal = step.principal;
        connection.authenticated = true;
      }
      return step.response;
    };
  }
  return Promise.resolve({ errorCode, mechanisms: [...settings.saslMechanisms] });
};
