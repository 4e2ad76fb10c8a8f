import { describe } from 'vitest';
import { compareAndSetTests } from './compare-and-set-tests.js';
import type { MetaStoreSuiteOptions } from './context.js';
import { useStore } from './context.js';
import { keyValueTests } from './key-value-tests.js';
import { lifecycleTests } from './lifecycle-tests.js';
import { listTests } from './list-tests.js';
import { watchTests } from './watch-tests.js';

export type { MetaStoreSuiteOptions } from './context.js';

/**
 * The conformance suite every `MetaStore` passes unchanged: get/put/delete, revisions and
 * versions, compare-and-set, list, watch, close and (when `persistent`) reopening. Call it at the
 * top level of a vitest test file; each test gets a fresh directory from `os.tmpdir()` and
 * `options.open(dir)` a store on it.
 */
export function describeMetaStore(name: string, options: MetaStoreSuiteOptions): void {
  describe(`MetaStore conformance: ${name}`, () => {
    const context = useStore(options);
    keyValueTests(context);
    compareAndSetTests(context);
    listTests(context);
    watchTests(context);
    lifecycleTests(context, options);
  });
}
