import type { Command } from 'commander';
import { registerAmqpReceive, registerAmqpSend } from './amqp-client.js';
import { registerResource } from './resource.js';

/** `robustmq amqp …`: AMQP queues and links, and send/receive. */
export function registerAmqp(program: Command): void {
  const amqp = program.command('amqp').description('AMQP 1.0: queues and links; send and receive');
  registerResource(amqp, {
    protocol: 'amqp',
    resource: 'queues',
    description: 'AMQP queues with their depth: list, describe',
    idName: 'queue name',
  });
  registerResource(amqp, {
    protocol: 'amqp',
    resource: 'links',
    description: 'AMQP links (senders and receivers) with their credit: list, describe',
    idName: 'link id',
  });
  registerAmqpSend(amqp);
  registerAmqpReceive(amqp);
}
