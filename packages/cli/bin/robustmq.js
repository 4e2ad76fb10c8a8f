#!/usr/bin/env node
// npm links this file at install time, when a fresh clone has not built dist/ yet; a bin pointing
// straight at dist/bin.js would not be linked, and `npx robustmq` would look on the registry.
import '../dist/bin.js';
