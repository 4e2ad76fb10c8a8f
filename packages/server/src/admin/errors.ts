import { ErrorCode, isRobustMQError, type Logger } from '@robustmq/core';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

/** The stable error codes of the admin API and the HTTP status each answers with. */
export const API_STATUS = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  TOO_LARGE: 413,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ApiErrorCode = keyof typeof API_STATUS;

/** An error answer of the admin API: `{"error": {code, message, field?}}`. */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly field?: string,
    /** Overrides the code's usual status (405 for a resource that cannot remove). */
    readonly status: number = API_STATUS[code],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  error: { code: ApiErrorCode; message: string; field?: string };
}

/** How core's error codes surface in the API. */
const FROM_CORE: Partial<Record<ErrorCode, ApiErrorCode>> = {
  [ErrorCode.InvalidArgument]: 'INVALID_ARGUMENT',
  [ErrorCode.OffsetOutOfRange]: 'INVALID_ARGUMENT',
  [ErrorCode.Config]: 'INVALID_ARGUMENT',
  [ErrorCode.NotFound]: 'NOT_FOUND',
  [ErrorCode.AlreadyExists]: 'ALREADY_EXISTS',
  [ErrorCode.Conflict]: 'CONFLICT',
  [ErrorCode.TooLarge]: 'TOO_LARGE',
  [ErrorCode.Unauthenticated]: 'UNAUTHENTICATED',
  [ErrorCode.Forbidden]: 'FORBIDDEN',
  [ErrorCode.Unavailable]: 'UNAVAILABLE',
  [ErrorCode.Timeout]: 'UNAVAILABLE',
  [ErrorCode.Closed]: 'UNAVAILABLE',
};

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** The field a validation issue is about, dotted (`configs.retention.ms`), or undefined for the whole body. */
function issueField(issue: ValidationIssue): string | undefined {
  const path = issue.instancePath.split('/').filter((part) => part.length > 0);
  if (issue.keyword === 'unrecognized_keys' && Array.isArray(issue.params.keys)) {
    path.push(String(issue.params.keys[0]));
  }
  return path.length > 0 ? path.join('.') : undefined;
}

function validationError(error: FastifyError & { validation: ValidationIssue[] }): ApiError {
  const issue = error.validation[0]!;
  const field = issueField(issue);
  const where = error.validationContext ?? 'body';
  let message = `${field ?? where}: ${issue.message ?? 'invalid'}`;
  if (issue.keyword === 'unrecognized_keys') {
    // Zod's default wording adds nothing to ours; a schema's own wording (config) says why.
    const own = issue.message && !issue.message.startsWith('Unrecognized key') ? `: ${issue.message}` : '';
    message = `unknown field ${field ?? ''} in the ${where}${own}`;
  }
  return new ApiError('INVALID_ARGUMENT', message, field);
}

/** Any thrown value as the API error to answer with. */
export function toApiError(error: unknown): ApiError | null {
  if (error instanceof ApiError) return error;
  if (hasZodFastifySchemaValidationErrors(error)) return validationError(error);
  if (isRobustMQError(error)) {
    const code = FROM_CORE[error.code];
    return code ? new ApiError(code, error.message) : null;
  }
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError('TOO_LARGE', 'request body is larger than 1 MiB');
  }
  if (fastifyError.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return new ApiError('TOO_LARGE', 'a path parameter is too long', undefined, 414);
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's own refusals (unparsable JSON, a content type other than JSON, an empty body)
    // answer 400 like every other bad input.
    return new ApiError('INVALID_ARGUMENT', fastifyError.message ?? 'bad request');
  }
  return null;
}

function sendKnown(reply: FastifyReply, known: ApiError): FastifyReply {
  const body: ErrorBody = {
    error: { code: known.code, message: known.message, ...(known.field ? { field: known.field } : {}) },
  };
  return reply.code(known.status).send(body);
}

/**
 * Answers what the router refuses before any route or error handler runs (a path that is not
 * valid percent-encoding, a path parameter over the length limit), with the API's error body.
 */
export function answerFrameworkError(error: FastifyError, _request: unknown, reply: FastifyReply): void {
  void sendKnown(reply, toApiError(error) ?? new ApiError('INVALID_ARGUMENT', 'bad request'));
}

/** Answers every error and unknown route with the API's JSON error body. */
export function installErrorHandlers(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((error, request, reply) => {
    const known = toApiError(error);
    if (known) return sendKnown(reply, known);
    logger.error({ err: error, method: request.method, url: request.url }, 'admin API request failed');
    const body: ErrorBody = { error: { code: 'INTERNAL', message: 'internal error; see the server log' } };
    return reply.code(500).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = {
      error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` },
    };
    return reply.code(404).send(body);
  });
}
