import type { QoS, UserProperties } from './codec/packets.js';
import type { UserPropertyList } from './codec/user-properties.js';
import { Publication, type CarriedProperties } from './publication.js';

/** A Publication as JSON, for session logs and retained messages kept across restarts. */
export interface StoredMessage {
  topic: string;
  /** Payload, base64. */
  payload: string;
  qos: QoS;
  retain: boolean;
  expiresAt: number;
  publisherId: string | null;
  timestamp: number;
  payloadFormatIndicator?: boolean;
  contentType?: string;
  responseTopic?: string;
  /** Correlation data, base64. */
  correlationData?: string;
  /** User properties in order, as [name, value] pairs. */
  userPropertyList?: UserPropertyList;
  /**
   * User properties as versions up to 0.1.0 stored them, the values of a repeated name grouped
   * (their order among other names lost): still read, no longer written.
   */
  userProperties?: UserProperties;
  /** The message's id across the brokers of a cluster ({@link Publication.uid}). */
  uid?: string;
  /** {@link Publication.exactlyOnce}. */
  exactlyOnce?: true;
}

/** `withPayload` false leaves the payload out (empty), for a caller that sends it as raw bytes. */
export function storeMessage(publication: Publication, withPayload = true): StoredMessage {
  const stored: StoredMessage = {
    topic: publication.topic,
    payload: withPayload ? publication.payload.toString('base64') : '',
    qos: publication.qos,
    retain: publication.retain,
    expiresAt: publication.expiresAt,
    publisherId: publication.publisherId,
    timestamp: publication.timestamp,
  };
  if (publication.uid !== null) stored.uid = publication.uid;
  if (publication.exactlyOnce) stored.exactlyOnce = true;
  const props = publication.properties;
  if (props) {
    if (props.payloadFormatIndicator !== undefined)
      stored.payloadFormatIndicator = props.payloadFormatIndicator;
    if (props.contentType !== undefined) stored.contentType = props.contentType;
    if (props.responseTopic !== undefined) stored.responseTopic = props.responseTopic;
    if (props.correlationData !== undefined)
      stored.correlationData = props.correlationData.toString('base64');
    if (props.userProperties !== undefined) stored.userPropertyList = props.userProperties;
  }
  return stored;
}

export function loadMessage(stored: StoredMessage): Publication {
  let carried: CarriedProperties | undefined;
  if (
    stored.payloadFormatIndicator !== undefined ||
    stored.contentType !== undefined ||
    stored.responseTopic !== undefined ||
    stored.correlationData !== undefined ||
    stored.userPropertyList !== undefined ||
    stored.userProperties !== undefined
  ) {
    carried = {};
    if (stored.payloadFormatIndicator !== undefined)
      carried.payloadFormatIndicator = stored.payloadFormatIndicator;
    if (stored.contentType !== undefined) carried.contentType = stored.contentType;
    if (stored.responseTopic !== undefined) carried.responseTopic = stored.responseTopic;
    if (stored.correlationData !== undefined)
      carried.correlationData = Buffer.from(stored.correlationData, 'base64');
    const userProperties = storedUserProperties(stored);
    if (userProperties !== undefined) carried.userProperties = userProperties;
  }
  const publication = new Publication(
    stored.topic,
    Buffer.from(stored.payload, 'base64'),
    stored.qos,
    stored.retain,
    carried,
    stored.expiresAt,
    stored.publisherId,
    null,
    4,
    stored.timestamp,
  );
  if (stored.uid !== undefined) publication.uid = stored.uid;
  if (stored.exactlyOnce === true) publication.exactlyOnce = true;
  publication.detach();
  return publication;
}

/** The user properties of a stored message or will, in either format. */
export function storedUserProperties(stored: {
  userPropertyList?: UserPropertyList;
  userProperties?: UserProperties;
}): UserPropertyList | undefined {
  if (stored.userPropertyList !== undefined) return stored.userPropertyList;
  const grouped = stored.userProperties;
  if (grouped === undefined) return undefined;
  const list: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(grouped)) {
    for (const v of Array.isArray(value) ? value : [value]) list.push([name, v]);
  }
  return list;
}
