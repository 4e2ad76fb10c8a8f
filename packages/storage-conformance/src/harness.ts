import type { StorageEngine } from '@robustmq/core';

/** How the conformance suite gets hold of the engine under test. */
export interface StorageHarness {
  /** Opens an engine over `dir` (a fresh empty temp dir per test; opened again with the same dir to test reopen). */
  open(dir: string): Promise<StorageEngine>;
  /** Whether data survives close() then open(dir) (false only for the memory engine). */
  persistent: boolean;
}
