import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MetaEntry, MetaEvent, MetaStore, MetaWatch, MetaWatchOptions } from '@robustmq/core';
import { afterEach, beforeEach, expect, vi } from 'vitest';

/** How the suite gets a store: `open(dir)` on a fresh or (when persistent) a reused directory. */
export interface MetaStoreSuiteOptions {
  open(dir: string): Promise<MetaStore>;
  /** True when a store reopened on the same directory must hold everything written before. */
  persistent: boolean;
}

/** The store under test in the current test, and a way to close and reopen it. */
export interface SuiteContext {
  readonly store: MetaStore;
  readonly dir: string;
  /** Closes the store and opens a new one on the same directory. */
  reopen(): Promise<MetaStore>;
  /** Closes the store; the suite will not close it again. */
  close(): Promise<void>;
}

/** Registers per-test set-up and tear-down in the calling `describe` and returns the live context. */
export function useStore(options: MetaStoreSuiteOptions): SuiteContext {
  let store: MetaStore | undefined;
  let dir: string | undefined;
  let open = false;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'robustmq-meta-suite-'));
    store = await options.open(dir);
    open = true;
  });

  afterEach(async () => {
    if (open) await store?.close();
    open = false;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  return {
    get store() {
      if (store === undefined) throw new Error('the store is opened in beforeEach');
      return store;
    },
    get dir() {
      if (dir === undefined) throw new Error('the directory is made in beforeEach');
      return dir;
    },
    async reopen() {
      if (open) await store?.close();
      open = false;
      store = await options.open(dir!);
      open = true;
      return store;
    },
    async close() {
      open = false;
      await store?.close();
    },
  };
}

export const text = (value: string): Uint8Array => new TextEncoder().encode(value);
export const decode = (value: Uint8Array): string => new TextDecoder().decode(value);

/** Keys of entries, for compact assertions on listings. */
export const keys = (entries: MetaEntry[]): string[] => entries.map((entry) => entry.key);

/** A watch that records what it is given, with a way to wait for the n-th event. */
export interface Recorder {
  events: MetaEvent[];
  watch: MetaWatch;
  waitFor(count: number): Promise<void>;
}

export function record(store: MetaStore, prefix: string, options?: MetaWatchOptions): Recorder {
  const events: MetaEvent[] = [];
  const watch = store.watch(prefix, (event) => events.push(event), options);
  return {
    events,
    watch,
    waitFor: (count) =>
      vi.waitFor(() => expect(events.length).toBeGreaterThanOrEqual(count), { timeout: 5000, interval: 5 }),
  };
}

/** A compact view of an event: `put key=value@revision` or `delete key@revision`. */
export function describeEvent(event: MetaEvent): string {
  return event.type === 'put'
    ? `put ${event.entry.key}=${decode(event.entry.value)}@${event.revision}`
    : `delete ${event.key}@${event.revision}`;
}
