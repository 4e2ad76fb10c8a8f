import { defineConfig } from 'vitest/config';

// The tests start real servers and spawn the CLI as processes: give them time on a busy machine,
// and run one file at a time so their servers do not compete.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
