import type { Command } from 'commander';
import { registerMqttPub, registerMqttSub } from './mqtt-client.js';
import { registerResource } from './resource.js';

/** `robustmq mqtt …`: MQTT clients, sessions, subscriptions, retained messages, and pub/sub. */
export function registerMqtt(program: Command): void {
  const mqtt = program
    .command('mqtt')
    .description('MQTT: clients, sessions, subscriptions, retained messages; publish and subscribe');
  registerResource(mqtt, {
    protocol: 'mqtt',
    resource: 'clients',
    description: 'connected MQTT clients: list, describe, kick',
    idName: 'client id',
    remove: { verb: 'kick', description: 'disconnect a client', done: 'kicked' },
  });
  registerResource(mqtt, {
    protocol: 'mqtt',
    resource: 'sessions',
    description: 'MQTT sessions, connected or not: list, describe, delete',
    idName: 'client id',
    remove: { verb: 'delete', description: 'delete a session and its queued messages', done: 'deleted' },
  });
  registerResource(mqtt, {
    protocol: 'mqtt',
    resource: 'subscriptions',
    description: 'MQTT subscriptions: list, describe',
    idName: 'subscription id',
  });
  registerResource(mqtt, {
    protocol: 'mqtt',
    resource: 'retained',
    description: 'retained messages: list, describe, delete',
    idName: 'topic',
    remove: { verb: 'delete', description: 'delete the retained message of a topic', done: 'deleted' },
  });
  registerMqttPub(mqtt);
  registerMqttSub(mqtt);
}
