import { afterEach, beforeEach, describe } from 'vitest';
import type { StorageHarness } from './harness.js';
import { Subject } from './subject.js';
import { describeAppendRead } from './suites/append-read.js';
import { describeClose } from './suites/closed.js';
import { describeConcurrency } from './suites/concurrency.js';
import { describeConditionalAppend } from './suites/conditional-append.js';
import { describeShardConfig } from './suites/config.js';
import { describeDeleteBefore } from './suites/delete-before.js';
import { describeAppendLogStart } from './suites/log-start.js';
import { describeReadInto } from './suites/read-into.js';
import { describePersistence } from './suites/persistence.js';
import { describeRetention } from './suites/retention.js';
import { describeShards } from './suites/shards.js';
import { describeOffsetForTimestamp } from './suites/timestamps.js';
import { describeValidation } from './suites/validation.js';
import { describeWaitForData } from './suites/wait.js';

/** Generous, because engines that fsync every append run this on slow CI disks. */
const TEST_TIMEOUT_MS = 60_000;

/**
 * Registers the StorageEngine conformance suite with vitest: call it at the top level of a test
 * file. Each test gets a fresh empty temp dir and an engine opened over it with `harness.open`,
 * closed and removed afterwards. Reopen tests run only when `harness.persistent`.
 */
export function describeStorageEngine(name: string, harness: StorageHarness): void {
  describe(`StorageEngine conformance: ${name}`, { timeout: TEST_TIMEOUT_MS }, () => {
    const subject = new Subject(harness);
    beforeEach(() => subject.setUp());
    afterEach(() => subject.tearDown());

    describeShards(subject);
    describeAppendRead(subject);
    describeReadInto(subject);
    describeDeleteBefore(subject);
    describeAppendLogStart(subject);
    describeShardConfig(subject);
    describeValidation(subject);
    describeOffsetForTimestamp(subject);
    describeWaitForData(subject);
    describeRetention(subject);
    describeConcurrency(subject);
    describeConditionalAppend(subject);
    describeClose(subject);
    if (harness.persistent) describePersistence(subject);
  });
}
