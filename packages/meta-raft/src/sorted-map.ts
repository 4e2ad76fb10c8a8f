import { createRequire } from 'node:module';
import type * as SortedBtree from 'sorted-btree';

// sorted-btree is CommonJS with its class on `exports.default`. ESM default-import interop differs
// between Node and bundlers/test runners, so load it with require, which means the same everywhere.
const { default: BTree, simpleComparator } = createRequire(import.meta.url)(
  'sorted-btree',
) as typeof SortedBtree;

/** A B+ tree keyed by string in UTF-16 code-unit order: ordered listing without sorting per call. */
export type SortedMap<V> = SortedBtree.default<string, V>;

export function createSortedMap<V>(entries?: [string, V][]): SortedMap<V> {
  return new BTree<string, V>(entries, simpleComparator);
}
