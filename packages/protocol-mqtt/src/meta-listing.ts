import type { MetaEntry, MetaStore } from '@robustmq/core';

/** Entries read per page: a listing of many keys never asks for them all at once. */
const PAGE = 1000;

/** Every entry under `prefix`, read a page at a time. */
export async function listAll(meta: MetaStore, prefix: string): Promise<MetaEntry[]> {
  const found: MetaEntry[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await meta.list(prefix, { limit: PAGE, ...(startAfter ? { startAfter } : {}) });
    found.push(...page);
    if (page.length < PAGE) return found;
    startAfter = page[page.length - 1]!.key;
  }
}
