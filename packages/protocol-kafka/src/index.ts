// Kafka wire protocol: a codec generated from Apache Kafka's message schemas, and the Kafka broker plugin
export {};
