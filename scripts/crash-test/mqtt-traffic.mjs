// MQTT traffic that must survive kills: a QoS 1 publisher to a persistent subscriber, and a
// persistent QoS 2 publisher to a persistent QoS 2 subscriber. Clients go round both brokers.
import mqtt from 'mqtt';
import { book } from './book.mjs';
import { PORTS } from './cluster.mjs';

const persistent = { clean: false, properties: { sessionExpiryInterval: 3600 } };

export function mqttTraffic({ connectTimeout, trace }) {
  const servers = PORTS.mqtt.map((port) => ({ host: '127.0.0.1', port }));
  const clients = [];
  const lostSessions = [];
  const books = { qos1: book(), qos2: book() };

  function connect(clientId, options) {
    const client = mqtt.connect({
      servers,
      clientId,
      protocolVersion: 5,
      connectTimeout,
      reconnectPeriod: 300,
      ...options,
    });
    client.on('connect', (connack) =>
      trace(`connect ${clientId} ${client.options.port} present ${connack.sessionPresent}`),
    );
    client.on('error', (error) => trace(`error ${clientId} ${error.message}`));
    clients.push(client);
    return client;
  }

  function subscriber(clientId, topic, qos, into) {
    let subscribed = false;
    const client = connect(clientId, persistent);
    client.on('connect', (connack) => {
      if (connack.sessionPresent) return;
      if (subscribed) lostSessions.push(clientId);
      client.subscribe(topic, { qos }, (error) => (subscribed ||= !error));
    });
    client.on('message', (_topic, payload) => into.got(payload.toString()));
  }

  function publisher(clientId, topic, qos, into, options) {
    const client = connect(clientId, options);
    let outstanding = 0;
    const timer = setInterval(() => {
      // A bounded number in flight, so that a stalled broker shows as a stall, not a backlog.
      if (!client.connected || outstanding > 50) return;
      for (let i = 0; i < 10; i++) {
        const value = into.next();
        outstanding++;
        client.publish(topic, value, { qos }, (error) => {
          outstanding--;
          if (!error) into.acked.add(value);
        });
      }
    }, 100);
    return () => clearInterval(timer);
  }

  subscriber('crash-sub1', 'crash/qos1', 1, books.qos1);
  subscriber('crash-sub2', 'crash/qos2', 2, books.qos2);
  let stops = [];
  return {
    books,
    start() {
      stops = [
        publisher('crash-pub1', 'crash/qos1', 1, books.qos1, {}),
        publisher('crash-pub2', 'crash/qos2', 2, books.qos2, persistent),
      ];
    },
    stop() {
      for (const stop of stops) stop();
    },
    report() {
      return {
        qos1: books.qos1.report(),
        qos2: books.qos2.report(),
        lostSessions,
        notConnected: clients.filter((c) => !c.connected).map((c) => c.options.clientId),
      };
    },
    close() {
      for (const client of clients) client.end(true);
    },
  };
}
