import { defineConfig } from 'vitest/config';

// Many tests start a real server (some kill and restart it) and spawn client processes: on a
// busy machine that takes seconds, so they get time; assertions carry their own deadlines.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
