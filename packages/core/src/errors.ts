/**
 * Error codes shared by every package, so that a protocol can map a storage or meta failure onto
 * its own wire error (an MQTT reason code, a Kafka error code, an AMQP condition) without
 * string matching.
 */
export const ErrorCode = {
  /** An argument is out of its domain: a negative offset, an empty shard name. */
  InvalidArgument: 'INVALID_ARGUMENT',
  /** The shard, topic, key or user does not exist. */
  NotFound: 'NOT_FOUND',
  /** Creating something that already exists. */
  AlreadyExists: 'ALREADY_EXISTS',
  /** A read below the log start offset or beyond the next offset. */
  OffsetOutOfRange: 'OFFSET_OUT_OF_RANGE',
  /** A batch, message or request above the configured maximum size. */
  TooLarge: 'TOO_LARGE',
  /** Stored bytes failed their checksum or framing. Never served to a client. */
  Corrupt: 'CORRUPT',
  /** A compare-and-set whose expected revision did not match. */
  Conflict: 'CONFLICT',
  /** The component was closed; the call was not carried out. */
  Closed: 'CLOSED',
  /** A deadline passed before the call completed; its effect is unknown. */
  Timeout: 'TIMEOUT',
  /** The component cannot serve now (no leader, a peer down); retrying may succeed. */
  Unavailable: 'UNAVAILABLE',
  /** Credentials were missing or wrong. */
  Unauthenticated: 'UNAUTHENTICATED',
  /** The principal is known but may not do this. */
  Forbidden: 'FORBIDDEN',
  /** A configuration setting is unknown or invalid; `setting` names it. */
  Config: 'CONFIG',
  /** A bug or an unexpected environment failure. */
  Internal: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one error type that crosses package boundaries. */
export class RobustMQError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RobustMQError';
    this.code = code;
  }
}

/** A configuration problem, naming the setting (e.g. `mqtt.port`) so start-up can say which one. */
export class ConfigError extends RobustMQError {
  readonly setting: string;

  constructor(setting: string, message: string) {
    super(ErrorCode.Config, `${setting}: ${message}`);
    this.name = 'ConfigError';
    this.setting = setting;
  }
}

/** True when `error` is a {@link RobustMQError}, optionally of the given code. */
export function isRobustMQError(error: unknown, code?: ErrorCode): error is RobustMQError {
  return error instanceof RobustMQError && (code === undefined || error.code === code);
}
