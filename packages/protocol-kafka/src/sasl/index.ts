import type { RequestContext } from '../broker/handler.js';
import { SaslSession } from './session.js';

export { SaslSession, parsePlain, type SaslStep, type SaslPeer } from './session.js';
export { ScramExchange, ScramError } from './scram.js';

/** The connection's SASL session, created on its first SASL request. */
export function saslSession(context: RequestContext): SaslSession {
  const connection = context.connection;
  if (!(connection.sasl instanceof SaslSession)) {
    // Registering an existing metric returns it, so this is cheap per connection.
    const outcomes = context.broker.context.metrics.counter({
      name: 'robustmq_kafka_sasl_authentications_total',
      help: 'Finished Kafka SASL exchanges, by mechanism and result',
      labelNames: ['mechanism', 'result'],
    });
    connection.sasl = new SaslSession(
      context.broker.settings.saslMechanisms,
      context.broker.context.auth,
      { clientId: context.clientId, remoteAddress: connection.remoteAddress },
      context.logger,
      (mechanism, succeeded) => outcomes.inc({ mechanism, result: succeeded ? 'success' : 'failure' }),
    );
  }
  return connection.sasl as SaslSession;
}
