// AMQP 1.0 traffic that must survive kills: a sender to a queue (a message accepted by the broker
// is acknowledged) and a consumer accepting from it, each going round both brokers.
import rhea from 'rhea';
import { PORTS } from './cluster.mjs';
import { book } from './book.mjs';

const ADDRESS = 'queue://crash-a';

export function amqpTraffic() {
  const container = rhea.create_container({ id: 'crash-test' });
  const messages = book();
  const connect = (first) => {
    let next = first;
    const connection = container.connect({
      connection_details: () => ({ host: '127.0.0.1', port: PORTS.amqp[next++ % 2] }),
      reconnect: true,
      initial_reconnect_delay: 200,
      max_reconnect_delay: 1000,
    });
    // Kills drop connections all the time; rhea reconnects, and would log each drop.
    connection.on('error', () => {});
    connection.on('disconnected', () => {});
    return connection;
  };
  const sending = connect(0);
  const sender = sending.open_sender(ADDRESS);
  const unsettled = new Map();
  // Deliveries of a connection that dropped are not acknowledged, whatever comes later.
  sending.on('disconnected', () => unsettled.clear());
  sending.on('accepted', (context) => {
    const value = unsettled.get(context.delivery);
    if (value !== undefined) messages.acked.add(value);
  });
  const receiving = connect(1);
  receiving.open_receiver({ source: ADDRESS, autoaccept: true, credit_window: 200 });
  receiving.on('message', (context) => messages.got(String(context.message.body)));
  let timer = null;
  return {
    start() {
      timer = setInterval(() => {
        for (let i = 0; i < 20 && sender.sendable(); i++) {
          const value = messages.next();
          unsettled.set(sender.send({ body: value }), value);
        }
      }, 20);
    },
    stop() {
      clearInterval(timer);
    },
    missing: () => messages.missing().length,
    report() {
      const report = messages.report();
      // Given again after a kill: allowed (at least once), counted to show how often.
      return { ...report, redelivered: report.twice };
    },
    close() {
      sending.close();
      receiving.close();
    },
  };
}
