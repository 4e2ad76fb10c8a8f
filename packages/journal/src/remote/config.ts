import { ConfigError } from '@robustmq/core';

/** Settings of the `[storage]` section for `engine = "@robustmq/journal/remote"`. */
export interface RemoteJournalSettings {
  host: string;
  port: number;
  /** Deadline of each call to the journal server. */
  requestTimeoutMs: number;
  /**
   * How long opening waits for the first connection, and calls wait for one while the server is
   * unreachable (then they fail UNAVAILABLE); also the limit of one connection attempt.
   */
  connectTimeoutMs: number;
  /** Longest delay between reconnection attempts. */
  maxReconnectDelayMs: number;
}

export const DEFAULT_REMOTE_SETTINGS = Object.freeze({
  requestTimeoutMs: 30_000,
  connectTimeoutMs: 5_000,
  maxReconnectDelayMs: 5_000,
});

function integer(value: unknown, name: string, min: number, max: number): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return n;
}

/** `host:port`, with an IPv6 host in brackets (`[::1]:1228`). */
export function parseAddress(value: unknown, name = 'address'): { host: string; port: number } {
  if (typeof value !== 'string') {
    throw new ConfigError(name, `must be a string "host:port", got ${JSON.stringify(value)}`);
  }
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new ConfigError(
      name,
      `must be "host:port" with a port from 1 to 65535 (an IPv6 host in brackets), got ${JSON.stringify(value)}`,
    );
  }
  return { host, port };
}

const TIMEOUTS: Record<string, { key: keyof typeof DEFAULT_REMOTE_SETTINGS; min: number }> = {
  request_timeout_ms: { key: 'requestTimeoutMs', min: 1 },
  connect_timeout_ms: { key: 'connectTimeoutMs', min: 1 },
  max_reconnect_delay_ms: { key: 'maxReconnectDelayMs', min: 1 },
};

const KNOWN = ['address', ...Object.keys(TIMEOUTS)];

/**
 * Reads the remote journal's settings from the `[storage]` section: `address` (required) and the
 * optional timeouts, in ms. An unknown key or a bad value is a {@link ConfigError} naming it.
 */
export function parseRemoteJournalConfig(section: Readonly<Record<string, unknown>>): RemoteJournalSettings {
  const timeouts: Record<string, number> = { ...DEFAULT_REMOTE_SETTINGS };
  let address: { host: string; port: number } | undefined;
  for (const [name, value] of Object.entries(section)) {
    if (name === 'address') {
      address = parseAddress(value, name);
      continue;
    }
    const timeout = TIMEOUTS[name];
    if (timeout === undefined) {
      throw new ConfigError(name, `unknown setting; the remote journal understands ${KNOWN.join(', ')}`);
    }
    timeouts[timeout.key] = integer(value, name, timeout.min, 2 ** 31 - 1);
  }
  if (address === undefined) {
    throw new ConfigError('address', 'required: the journal server to use, as "host:port"');
  }
  return { ...address, ...(timeouts as typeof DEFAULT_REMOTE_SETTINGS) };
}
