import type { MessageHeader } from '@robustmq/core';
import type { CarriedProperties } from './publication.js';
import { topicNameProblem } from './topic-names.js';

/**
 * Header names under which MQTT 5 properties other than user properties travel in the unified
 * namespace (Kafka record headers, AMQP application properties); see docs/cross-protocol.md.
 */
export const MqttHeader = {
  /** The Content Type property; also what a Kafka producer sets to give MQTT a content type. */
  contentType: 'content-type',
  /** The Response Topic property. */
  responseTopic: 'mqtt-response-topic',
  /** The Correlation Data property, its bytes as they are. */
  correlationData: 'mqtt-correlation-data',
} as const;

/** Headers that carry AMQP sections as encoded bytes: meaningless to MQTT clients, so not passed on. */
const AMQP_PREFIX = 'amqp-';

/** The headers of an MQTT message: its user properties in order, then the mapped properties. */
export function headersOf(properties: CarriedProperties | undefined): MessageHeader[] {
  const headers: MessageHeader[] = [];
  if (!properties) return headers;
  for (const [key, value] of properties.userProperties ?? []) {
    headers.push({ key, value: Buffer.from(value) });
  }
  if (properties.contentType !== undefined) {
    headers.push({ key: MqttHeader.contentType, value: Buffer.from(properties.contentType) });
  }
  if (properties.responseTopic !== undefined) {
    headers.push({ key: MqttHeader.responseTopic, value: Buffer.from(properties.responseTopic) });
  }
  if (properties.correlationData !== undefined) {
    headers.push({ key: MqttHeader.correlationData, value: properties.correlationData });
  }
  return headers;
}

const utf8 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

/**
 * The MQTT 5 properties for a message from another protocol: the mapped headers become their
 * properties (the first of each; a response topic only when it is a valid topic name), `amqp-`
 * headers are left out, every other header becomes a user property (its value read as UTF-8), in
 * the headers' order.
 */
export function propertiesOf(headers: readonly MessageHeader[]): CarriedProperties | undefined {
  let carried: CarriedProperties | undefined;
  let user: Array<[string, string]> | undefined;
  for (const { key, value } of headers) {
    if (key.startsWith(AMQP_PREFIX)) continue;
    if (key === MqttHeader.contentType) {
      carried ??= {};
      carried.contentType ??= utf8(value);
    } else if (key === MqttHeader.responseTopic) {
      // A response topic a client could not publish to would be a protocol error at the subscriber.
      const topic = utf8(value);
      if (topicNameProblem(topic, Number.MAX_SAFE_INTEGER) === null) {
        carried ??= {};
        carried.responseTopic ??= topic;
      }
    } else if (key === MqttHeader.correlationData) {
      carried ??= {};
      carried.correlationData ??= Buffer.from(value);
    } else {
      (user ??= []).push([key, utf8(value)]);
    }
  }
  if (user) (carried ??= {}).userProperties = user;
  return carried;
}
