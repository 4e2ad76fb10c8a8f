// AMQP 1.0 broker plugin on rhea: queues, topics, credit and settlement
export {};
