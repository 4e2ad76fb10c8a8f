import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StorageEngine } from '@robustmq/core';
import type { StorageHarness } from './harness.js';

/**
 * The engine under test for the running test: a fresh temp dir and an engine over it, opened
 * before each test and closed and removed after it.
 */
export class Subject {
  readonly harness: StorageHarness;
  #dir: string | undefined;
  #engine: StorageEngine | undefined;
  #open = false;

  constructor(harness: StorageHarness) {
    this.harness = harness;
  }

  /** The engine opened for the running test (still the same object after {@link close}). */
  get engine(): StorageEngine {
    if (this.#engine === undefined) throw new Error('no engine: the suite opens one before each test');
    return this.#engine;
  }

  get dir(): string {
    if (this.#dir === undefined) throw new Error('no data dir: the suite makes one before each test');
    return this.#dir;
  }

  async setUp(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'robustmq-conformance-'));
    this.#engine = await this.harness.open(this.#dir);
    this.#open = true;
  }

  /** Closes the engine; calls on {@link engine} then fail with CLOSED. */
  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    await this.engine.close();
  }

  /** Closes the engine and opens a new one over the same dir. */
  async reopen(): Promise<StorageEngine> {
    await this.close();
    this.#engine = await this.harness.open(this.dir);
    this.#open = true;
    return this.#engine;
  }

  async tearDown(): Promise<void> {
    try {
      await this.close();
    } finally {
      const dir = this.#dir;
      this.#dir = undefined;
      this.#engine = undefined;
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    }
  }
}
