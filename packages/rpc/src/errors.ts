import { ErrorCode, RobustMQError } from '@robustmq/core';

/** What an Error frame carries. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

const CODES = new Set<string>(Object.values(ErrorCode));

/** The body of the Error frame for a failure thrown by a handler. */
export function toErrorBody(error: unknown): ErrorBody {
  if (error instanceof RobustMQError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCode.Internal, message };
}

/** Rebuilds the error a handler threw from the body of an Error frame. */
export function fromErrorBody(body: unknown): RobustMQError {
  if (typeof body === 'object' && body !== null) {
    const { code, message } = body as Record<string, unknown>;
    if (typeof code === 'string' && CODES.has(code) && typeof message === 'string') {
      return new RobustMQError(code as ErrorCode, message);
    }
  }
  return new RobustMQError(ErrorCode.Internal, 'the peer sent an unreadable error');
}
