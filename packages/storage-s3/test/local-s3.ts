import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export const BUCKET = 'robustmq-test';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * A real S3 API on 127.0.0.1 (s3rver, objects kept in a temp dir), which can be stopped and
 * started again on the same port with the same objects.
 */
export class LocalS3 {
  readonly dir: string;
  port = 0;
  #server: S3rver | null = null;
  #client: S3Client | null = null;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async start(): Promise<LocalS3> {
    const s3 = new LocalS3(await mkdtemp(join(tmpdir(), 'robustmq-s3rver-')));
    await s3.resume();
    return s3;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#server !== null;
  }

  /** Settings that point the tiered engine at this server. */
  settings(prefix: string) {
    return {
      bucket: BUCKET,
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: CREDENTIALS,
      prefix,
    };
  }

  /** Starts serving (again), on the port it had before. */
  async resume(): Promise<void> {
    if (this.#server !== null) return;
    const server = new S3rver({
      address: '127.0.0.1',
      port: this.port,
      silent: true,
      directory: this.dir,
      configureBuckets: [{ name: BUCKET }],
    });
    const address = await server.run();
    this.port = address.port;
    this.#server = server;
  }

  /** Stops serving, dropping open connections: the bucket is unreachable until {@link resume}. */
  async pause(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    const closed = server.close();
    server.httpServer.closeAllConnections();
    await closed;
  }

  /** A client of our own, to look at the bucket from outside the engine. */
  client(): S3Client {
    this.#client ??= new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: CREDENTIALS,
    });
    return this.#client;
  }

  /** Every key under `prefix`, sorted. */
  async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client().send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  }

  async stop(): Promise<void> {
    await this.pause();
    this.#client?.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}
