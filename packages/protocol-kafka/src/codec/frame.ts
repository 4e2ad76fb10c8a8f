/**
 * Whole request and response frames: the header version rules and the size prefix.
 *
 * A request uses header v2 when its API version is flexible, else v1; a response uses header v1
 * when flexible, else v0 — except ApiVersions responses, which always use v0 so that a client
 * that does not yet know the broker's versions can read them.
 */
import { API_SCHEMAS, type ApiSchema } from './messages/index.js';
import {
  readRequestHeader,
  sizeRequestHeader,
  writeRequestHeader,
  type RequestHeader,
} from './messages/request-header.js';
import { readResponseHeader, sizeResponseHeader, writeResponseHeader } from './messages/response-header.js';
import { largeBytesIn, ProtocolError, Reader, Writer } from './protocol.js';

const API_VERSIONS_KEY = 18;

/** The schema of `apiKey`, or undefined for a key the schemas do not define. */
export function apiSchema(apiKey: number): ApiSchema | undefined {
  return API_SCHEMAS.get(apiKey);
}

function isFlexible(apiKey: number, apiVersion: number): boolean {
  const flexibleMin = API_SCHEMAS.get(apiKey)?.flexibleMin;
  return flexibleMin !== undefined && flexibleMin !== null && apiVersion >= flexibleMin;
}

/** The request header version of a request. */
export function requestHeaderVersion(apiKey: number, apiVersion: number): number {
  return isFlexible(apiKey, apiVersion) ? 2 : 1;
}

/** The response header version of a response (ApiVersions: always 0). */
export function responseHeaderVersion(apiKey: number, apiVersion: number): number {
  if (apiKey === API_VERSIONS_KEY) return 0;
  return isFlexible(apiKey, apiVersion) ? 1 : 0;
}

/**
 * Reads the request header at the start of a frame (without its size prefix). The header version
 * depends on the API key and version, which every header version starts with.
 */
export function decodeRequestHeader(frame: Buffer): { header: RequestHeader; bodyOffset: number } {
  if (frame.length < 8) throw new ProtocolError('request frame shorter than its header');
  const reader = new Reader(frame);
  const header = readRequestHeader(reader, requestHeaderVersion(frame.readInt16BE(0), frame.readInt16BE(2)));
  return { header, bodyOffset: reader.offset };
}

/** A decoded request frame. */
export interface DecodedRequest {
  header: RequestHeader;
  /** The request body, typed by `header.requestApiKey` (e.g. `ProduceRequest` for key 0). */
  request: unknown;
}

/**
 * Decodes a request frame (the bytes after the size prefix): header and body. Throws a
 * ProtocolError for an unknown API key or version, or malformed bytes.
 */
export function decodeRequest(frame: Buffer): DecodedRequest {
  const { header, bodyOffset } = decodeRequestHeader(frame);
  const schema = API_SCHEMAS.get(header.requestApiKey);
  if (!schema) throw new ProtocolError(`unknown API key ${header.requestApiKey}`);
  const version = header.requestApiVersion;
  if (version < schema.minVersion || version > schema.maxVersion) {
    throw new ProtocolError(`${schema.name} has no version ${version}`);
  }
  const reader = new Reader(frame, bodyOffset);
  const request: unknown = schema.request.read(reader, version);
  return { header, request };
}

function requestWriter(
  header: { apiKey: number; apiVersion: number; correlationId: number; clientId: string | null },
  body: unknown,
  shareLargeBytes: boolean,
): Writer {
  const schema = API_SCHEMAS.get(header.apiKey);
  if (!schema) throw new ProtocolError(`unknown API key ${header.apiKey}`);
  const headerValue: RequestHeader = {
    requestApiKey: header.apiKey,
    requestApiVersion: header.apiVersion,
    correlationId: header.correlationId,
    clientId: header.clientId,
  };
  const headerVersion = requestHeaderVersion(header.apiKey, header.apiVersion);
  const headerSize = sizeRequestHeader(headerValue, headerVersion);
  const size = headerSize + schema.request.size(body, header.apiVersion);
  const sharedBytes = shareLargeBytes ? largeBytesIn(body) : 0;
  const writer = new Writer(4 + size, { shareLargeBytes, sharedBytes });
  writer.writeInt32(size);
  writeRequestHeader(writer, headerValue, headerVersion);
  schema.request.write(writer, body, header.apiVersion);
  if (writer.length !== 4 + size || writer.offset !== writer.buf.length) {
    throw new ProtocolError(
      `${schema.name} v${header.apiVersion} wrote ${writer.length} bytes, sized ${4 + size}`,
    );
  }
  return writer;
}

/** Encodes a request with its header and the 4-byte size prefix. */
export function encodeRequest(
  header: { apiKey: number; apiVersion: number; correlationId: number; clientId: string | null },
  body: unknown,
): Buffer {
  return requestWriter(header, body, false).buf;
}

/**
 * Encodes a request like {@link encodeRequest}, as buffers to write in order: large byte fields
 * (Produce records) are referenced rather than copied into the frame, as a client writing the
 * frame with one vectored write would send them.
 */
export function encodeRequestChunks(
  header: { apiKey: number; apiVersion: number; correlationId: number; clientId: string | null },
  body: unknown,
): Buffer[] {
  let writer: Writer;
  try {
    writer = requestWriter(header, body, true);
  } catch {
    // A large byte value in a field this version leaves out: the frame has room for it that
    // the shared writer did not reserve. Copying is always right.
    return [encodeRequest(header, body)];
  }
  return writer.chunks();
}

function responseWriter(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  body: unknown,
  shareLargeBytes: boolean,
): Writer {
  const schema = API_SCHEMAS.get(apiKey);
  if (!schema) throw new ProtocolError(`unknown API key ${apiKey}`);
  const headerVersion = responseHeaderVersion(apiKey, apiVersion);
  const headerValue = { correlationId };
  const size = sizeResponseHeader(headerValue, headerVersion) + schema.response.size(body, apiVersion);
  const sharedBytes = shareLargeBytes ? largeBytesIn(body) : 0;
  const writer = new Writer(4 + size, { shareLargeBytes, sharedBytes });
  writer.writeInt32(size);
  writeResponseHeader(writer, headerValue, headerVersion);
  schema.response.write(writer, body, apiVersion);
  if (writer.length !== 4 + size || writer.offset !== writer.buf.length) {
    throw new ProtocolError(`${schema.name} v${apiVersion} wrote ${writer.length} bytes, sized ${4 + size}`);
  }
  return writer;
}

/** Encodes a response with its header and the 4-byte size prefix. */
export function encodeResponse(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  body: unknown,
): Buffer {
  return responseWriter(apiKey, apiVersion, correlationId, body, false).buf;
}

/**
 * Encodes a response like {@link encodeResponse}, as buffers to write in order: large byte fields
 * (Fetch records) are referenced rather than copied into the frame.
 */
export function encodeResponseChunks(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  body: unknown,
): Buffer[] {
  let writer: Writer;
  try {
    writer = responseWriter(apiKey, apiVersion, correlationId, body, true);
  } catch {
    // A large byte value in a field this version leaves out: the frame has room for it that
    // the shared writer did not reserve. Copying is always right.
    return [encodeResponse(apiKey, apiVersion, correlationId, body)];
  }
  return writer.chunks();
}

/** Decodes a response frame (after the size prefix) for a request sent with `apiKey`/`apiVersion`. */
export function decodeResponse(
  frame: Buffer,
  apiKey: number,
  apiVersion: number,
): { correlationId: number; response: unknown } {
  const schema = API_SCHEMAS.get(apiKey);
  if (!schema) throw new ProtocolError(`unknown API key ${apiKey}`);
  const reader = new Reader(frame);
  const header = readResponseHeader(reader, responseHeaderVersion(apiKey, apiVersion));
  const response: unknown = schema.response.read(reader, apiVersion);
  return { correlationId: header.correlationId, response };
}
