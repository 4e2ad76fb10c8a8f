/** Messages between the mqtt suite and its load-generator processes (Node IPC, JSON). */

/** The 64-byte payload: hrtime ns (u64 LE), publisher index (u32 LE), sequence (u32 LE), zeros. */
export const PAYLOAD_BYTES = 64;
export const STAMP_OFFSET = 0;
export const PUBLISHER_OFFSET = 8;
export const SEQUENCE_OFFSET = 12;

export interface PublisherSpec {
  role: 'pub';
  clientId: string;
  /** Index of this publisher in the scenario: payloads carry it, credit is kept per index. */
  publisher: number;
  topic: string;
  qos: 0 | 1;
}

export interface SubscriberSpec {
  role: 'sub';
  clientId: string;
  filter: string;
  qos: 0 | 1;
}

export type ClientSpec = PublisherSpec | SubscriberSpec;

export interface Setup {
  type: 'setup';
  host: string;
  port: number;
  clients: ClientSpec[];
  publishers: number;
  /** Subscribers that receive each message of a publisher. */
  copies: number;
  /** Most messages of one publisher not yet delivered to every subscriber (and, QoS 1, not acked). */
  window: number;
}

export type ToWorker =
  | Setup
  | { type: 'go' }
  | { type: 'credit'; delivered: number[] }
  | { type: 'mark' }
  | { type: 'report' }
  | { type: 'stop' }
  | { type: 'totals' }
  | { type: 'teardown' }
  | { type: 'idle'; host: string; port: number; count: number; keepalive: number; prefix: string }
  | { type: 'close-idle' };

export interface Report {
  type: 'report';
  /** Messages received by this worker's subscribers since the mark. */
  delivered: number;
  /** Messages written by this worker's publishers since the mark. */
  published: number;
  elapsedNs: number;
  histogram: [number, number][];
}

export interface Totals {
  type: 'totals';
  /** Per publisher index: messages written, PUBACKs received, deliveries (every subscriber). */
  sent: number[];
  acked: number[];
  delivered: number[];
  /** Deliveries of a sequence number a subscriber had already seen. */
  duplicates: number;
  /** Times a QoS 0 publisher gave up waiting for credit and wrote its window off. */
  writtenOff: number;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'delivered'; counts: number[] }
  | Report
  | { type: 'stopped' }
  | Totals
  | { type: 'torn-down' }
  | { type: 'idle-ready'; connected: number; error: string | null }
  | { type: 'idle-closed' }
  | { type: 'error'; message: string };
