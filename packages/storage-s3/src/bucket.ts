import type { Readable } from 'node:stream';
import { formatWithOptions } from 'node:util';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { ErrorCode, RobustMQError, silentLogger, validateShardName, type Logger } from '@robustmq/core';
import type { SealedSegment } from '@robustmq/journal';
import type { TieringSettings } from './config.js';

/** What the bucket holds for one key, as far as confirming an upload needs. */
export interface StoredObject {
  size: number;
  /** The ETag without quotes: the MD5 of the bytes for a plain upload. */
  etag: string;
  /** The SHA-256 the uploader recorded in the object's metadata, when there is one. */
  sha256: string | undefined;
  /** The shard the uploader recorded in the object's metadata, when there is one. */
  shard: string | undefined;
  /** The segment's end offset the uploader recorded in the object's metadata, when there is one. */
  endOffset: number | undefined;
}

/** Which segment an object must be to be served for it. */
export type SegmentIdentity = Pick<SealedSegment, 'shard' | 'baseOffset' | 'endOffset' | 'size'>;

/** An object of a shard's segment, found by listing. */
export interface SegmentObject {
  key: string;
  shard: string;
  baseOffset: number;
}

/** A segment upload: its bytes and their digests. */
export interface SegmentUpload {
  body: Readable | Uint8Array;
  size: number;
  md5: Buffer;
  sha256: string;
  shard: string;
  endOffset: number;
}

const SEGMENT_FILE = /^(\d{20})\.log$/;
const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/;

function stem(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

function isShardName(name: string): boolean {
  try {
    validateShardName(name);
    return true;
  } catch {
    return false;
  }
}

function endOffsetOf(metadata: Record<string, string> | undefined): number | undefined {
  const value = metadata?.['end-offset'];
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value);
}

function statusOf(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

/** A 404 for the key itself, not for a bucket that is gone (which may be a setup fault). */
function isMissingObject(error: unknown): boolean {
  return statusOf(error) === 404 && !(error instanceof Error && error.name === 'NoSuchBucket');
}

function reasonOf(error: unknown): string {
  return error instanceof S3ServiceException
    ? `${error.name} (HTTP ${String(error.$metadata.httpStatusCode)})`
    : error instanceof Error
      ? error.message
      : String(error);
}

/**
 * What went wrong, without what was being done when it did (a key, a shard): failures that share
 * it are the same problem, e.g. wrong credentials refusing every call alike.
 */
export function failureKind(error: unknown): string {
  if (!(error instanceof RobustMQError)) return reasonOf(error);
  return error.cause === undefined
    ? `${error.code} ${error.message}`
    : `${error.code} ${reasonOf(error.cause)}`;
}

/** What the SDK logs when a call fails: `{ clientName, commandName, input, error, metadata }`. */
function isCommandFailure(entry: unknown): entry is { commandName: unknown; error: unknown } {
  return typeof entry === 'object' && entry !== null && 'commandName' in entry && 'error' in entry;
}

/**
 * Turns an S3 client failure into a RobustMQError: UNAVAILABLE for anything the bucket did not
 * do (unreachable, timed out, refused, server errors), CLOSED when the engine closed mid-call.
 */
export function bucketError(error: unknown, what: string): RobustMQError {
  if (error instanceof RobustMQError) return error;
  if (isAbort(error))
    return new RobustMQError(ErrorCode.Closed, `${what}: the engine closed`, { cause: error });
  return new RobustMQError(
    ErrorCode.Unavailable,
    `${what}: the bucket cannot serve now: ${reasonOf(error)}`,
    {
      cause: error,
    },
  );
}

/**
 * The bucket as the tiered engine uses it: one object per uploaded segment, at
 * `<prefix>shards/<shard name>/<base offset, 20 digits>.log`, holding the segment's log byte for
 * byte, and `<prefix>robustmq-owner.json` naming the engine the prefix belongs to. Every failure
 * is a RobustMQError.
 */
export class SegmentBucket {
  readonly client: S3Client;
  readonly name: string;
  readonly prefix: string;
  readonly #signal: AbortSignal;
  readonly #logger: Logger;

  constructor(
    client: S3Client,
    name: string,
    prefix: string,
    signal: AbortSignal,
    logger: Logger = silentLogger,
  ) {
    this.client = client;
    this.name = name;
    this.prefix = prefix;
    this.#signal = signal;
    this.#logger = logger;
  }

  /** The object naming the engine that owns the prefix. */
  get ownerKey(): string {
    return `${this.prefix}robustmq-owner.json`;
  }

  /** The text of a small object, or null when there is none. */
  async getText(key: string): Promise<string | null> {
    try {
      const got = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }), {
        abortSignal: this.#signal,
      });
      return got.Body === undefined ? '' : await got.Body.transformToString('utf8');
    } catch (error) {
      if (isMissingObject(error)) return null;
      throw bucketError(error, `reading ${key}`);
    }
  }

  /**
   * Writes a small object unless one is there already: false when the bucket said it is. Servers
   * that ignore `If-None-Match` on writes (s3rver, older MinIO and Ceph) overwrite instead, so
   * callers read the object back to see whose write landed.
   */
  async putIfAbsent(key: string, text: string): Promise<boolean> {
    const put = (conditional: boolean) =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: text,
          ContentType: 'application/json',
          ...(conditional ? { IfNoneMatch: '*' } : {}),
        }),
        { abortSignal: this.#signal },
      );
    try {
      try {
        await put(true);
      } catch (error) {
        // Refused as unknown rather than ignored: the read-back has to do.
        if (statusOf(error) !== 501) throw error;
        await put(false);
      }
      return true;
    } catch (error) {
      // 412: the object exists; 409: another conditional write to it is in flight.
      const status = statusOf(error);
      if (status === 412 || status === 409) return false;
      throw bucketError(error, `writing ${key}`);
    }
  }

  /**
   * An S3 client for the settings: no checksums beyond what S3 requires, so any S3 server fits;
   * the SDK's own warnings go to `logger`.
   */
  static client(settings: TieringSettings, logger: Logger): S3Client {
    const sdkLog =
      (level: 'warn' | 'error') =>
      (...content: unknown[]): void => {
        const [first] = content;
        if (content.length === 1 && isCommandFailure(first)) {
          // The SDK reports every failed call at error, the 404 of the check before each first
          // upload included; the engine logs the failures that matter itself, saying what failed.
          logger.debug(
            {
              command: first.commandName,
              error: first.error instanceof Error ? first.error.name : String(first.error),
              status: statusOf(first.error),
            },
            'S3 call failed',
          );
          return;
        }
        logger[level](
          { sdk: formatWithOptions({ breakLength: Infinity, depth: 3 }, ...content) },
          'AWS SDK reported a problem',
        );
      };
    return new S3Client({
      logger: {
        trace: () => {},
        debug: () => {},
        info: () => {},
        warn: sdkLog('warn'),
        error: sdkLog('error'),
      },
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
      ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: Math.min(settings.requestTimeoutMs, 10_000),
        requestTimeout: settings.requestTimeoutMs,
      },
    });
  }

  /** The prefix of every object of `shard`. */
  shardPrefix(shard: string): string {
    return `${this.prefix}shards/${shard}/`;
  }

  keyOf(shard: string, baseOffset: number): string {
    return `${this.shardPrefix(shard)}${stem(baseOffset)}.log`;
  }

  /**
   * The shard and segment of an object key, or null for a key that is not one of ours (its shard
   * part no shard name, so no shard of ours can ever have it: it is left alone).
   */
  parseKey(key: string): SegmentObject | null {
    const root = `${this.prefix}shards/`;
    if (!key.startsWith(root)) return null;
    const rest = key.slice(root.length);
    const slash = rest.lastIndexOf('/');
    if (slash <= 0) return null;
    const match = SEGMENT_FILE.exec(rest.slice(slash + 1));
    if (match === null) return null;
    const baseOffset = Number(match[1]);
    const shard = rest.slice(0, slash);
    if (!Number.isSafeInteger(baseOffset) || !isShardName(shard)) return null;
    return { key, shard, baseOffset };
  }

  /** What the bucket holds at `key`, or null when nothing. */
  async head(key: string): Promise<StoredObject | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }), {
        abortSignal: this.#signal,
      });
      return {
        size: head.ContentLength ?? -1,
        etag: (head.ETag ?? '').replaceAll('"', ''),
        sha256: head.Metadata?.sha256,
        shard: head.Metadata?.shard,
        endOffset: endOffsetOf(head.Metadata),
      };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw bucketError(error, `checking ${key}`);
    }
  }

  /**
   * Writes a segment's object (replacing whatever is there: keys are deterministic), recording in
   * its metadata which segment it is, which reads check.
   */
  async put(key: string, upload: SegmentUpload): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: upload.body,
          ContentLength: upload.size,
          ContentMD5: upload.md5.toString('base64'),
          ContentType: 'application/octet-stream',
          Metadata: { sha256: upload.sha256, shard: upload.shard, 'end-offset': String(upload.endOffset) },
        }),
        { abortSignal: this.#signal },
      );
    } catch (error) {
      throw bucketError(error, `uploading ${key}`);
    }
  }

  /**
   * Up to `length` bytes at `position` of a segment's object; fewer only at its end. The object
   * must be that segment's upload, as its metadata and size say: anything else under its key (the
   * object of another shard, one cut short or replaced) fails with CORRUPT rather than be served.
   */
  async read(segment: SegmentIdentity, position: number, length: number): Promise<Uint8Array> {
    const key = this.keyOf(segment.shard, segment.baseOffset);
    if (length <= 0) return new Uint8Array(0);
    let bytes: Uint8Array;
    let metadata: Record<string, string> | undefined;
    let range: RegExpExecArray | null;
    let size: number | undefined;
    try {
      const got = await this.client.send(
        new GetObjectCommand({
          Bucket: this.name,
          Key: key,
          Range: `bytes=${position}-${position + length - 1}`,
        }),
        { abortSignal: this.#signal },
      );
      bytes = got.Body === undefined ? new Uint8Array(0) : await got.Body.transformToByteArray();
      metadata = got.Metadata;
      range = got.ContentRange === undefined ? null : CONTENT_RANGE.exec(got.ContentRange);
      size = range === null ? got.ContentLength : Number(range[3]);
    } catch (error) {
      const status = statusOf(error);
      if (status === 416) {
        // The object ends before `position`: no copy of this segment, which is longer.
        if (position < segment.size) throw this.#notTheSegment(key, segment, 'it is shorter');
        return new Uint8Array(0);
      }
      if (isMissingObject(error)) {
        // Someone removed it from the bucket: its records are lost, as with a local segment found
        // damaged, and reported the same way (the bucket answered, so retrying will not help).
        this.#logger.error(
          { bucket: this.name, key, shard: segment.shard, baseOffset: segment.baseOffset },
          'the object of an offloaded segment is missing from the bucket; reads of its offsets fail with CORRUPT',
        );
        throw new RobustMQError(
          ErrorCode.Corrupt,
          `shard ${segment.shard}: segment ${segment.baseOffset} was offloaded, but its object ${key} ` +
            `is missing from bucket ${this.name}: the records in it are lost`,
          { cause: error },
        );
      }
      throw bucketError(error, `reading ${key}`);
    }
    if (metadata?.shard !== segment.shard || endOffsetOf(metadata) !== segment.endOffset) {
      throw this.#notTheSegment(
        key,
        segment,
        `its metadata names shard ${String(metadata?.shard)} up to offset ${String(metadata?.['end-offset'])}`,
      );
    }
    if (size !== segment.size) throw this.#notTheSegment(key, segment, `it holds ${String(size)} bytes`);
    if (range === null) {
      // A server that ignores ranges sends the whole object.
      if (bytes.length !== segment.size) throw this.#notTheSegment(key, segment, 'its body is cut short');
      return bytes.subarray(position, position + length);
    }
    if (Number(range[1]) !== position || bytes.length > length) {
      throw new RobustMQError(
        ErrorCode.Unavailable,
        `reading ${key}: the bucket sent bytes ${range[1]}-${range[2]} for ${position}-${position + length - 1}`,
      );
    }
    return bytes;
  }

  #notTheSegment(key: string, segment: SegmentIdentity, why: string): RobustMQError {
    return new RobustMQError(
      ErrorCode.Corrupt,
      `object ${key} is not the copy of segment ${segment.baseOffset} of shard ${segment.shard} ` +
        `(${segment.size} bytes, up to offset ${segment.endOffset}): ${why}`,
    );
  }

  /** Every segment object under `prefix` (default: every shard's). */
  async list(prefix = `${this.prefix}shards/`): Promise<SegmentObject[]> {
    const found: SegmentObject[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, ContinuationToken: token }),
          { abortSignal: this.#signal },
        );
        for (const object of page.Contents ?? []) {
          const parsed = object.Key === undefined ? null : this.parseKey(object.Key);
          if (parsed !== null) found.push(parsed);
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (error) {
      throw bucketError(error, `listing ${prefix}`);
    }
    return found;
  }

  /** Deletes an object; one that is already gone is fine. */
  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key }), {
        abortSignal: this.#signal,
      });
    } catch (error) {
      if (statusOf(error) === 404) return;
      throw bucketError(error, `deleting ${key}`);
    }
  }
}
