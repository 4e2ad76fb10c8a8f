import { defineConfig } from 'vitest/config';

// Many tests spawn the server (several starts in a row, some with kill -9): on a busy machine one
// start takes seconds, so they get time; assertions that wait carry their own deadlines.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
