import type { MetaPutOptions } from '@robustmq/core';
import type { MetaDeleteOp, MetaOp, MetaPutOp } from './command.js';
import type { MetaOpResult } from './state-machine.js';

type Txn = (ops: MetaOp[]) => Promise<MetaOpResult[]>;

/** The one op of `MetaStore.put`. */
export function putOp(key: string, value: Uint8Array, options: MetaPutOptions = {}): MetaPutOp {
  const op: MetaPutOp = { type: 'put', key, value };
  if (options.ifRevision !== undefined) op.ifRevision = options.ifRevision;
  return op;
}

/** The one op of `MetaStore.delete`. */
export function deleteOp(key: string, options: MetaPutOptions = {}): MetaDeleteOp {
  const op: MetaDeleteOp = { type: 'delete', key };
  if (options.ifRevision !== undefined) op.ifRevision = options.ifRevision;
  return op;
}

/** What `MetaStore.put` returns, from the results of its one-op transaction. */
export function putRevision(results: MetaOpResult[]): number {
  return (results[0] as Extract<MetaOpResult, { type: 'put' }>).revision;
}

/** What `MetaStore.delete` returns, from the results of its one-op transaction. */
export function deleted(results: MetaOpResult[]): boolean {
  return (results[0] as Extract<MetaOpResult, { type: 'delete' }>).deleted;
}

/** `MetaStore.put` as a one-op transaction, the same for every store built on `txn`. */
export async function putThroughTxn(
  txn: Txn,
  key: string,
  value: Uint8Array,
  options: MetaPutOptions = {},
): Promise<number> {
  return putRevision(await txn([putOp(key, value, options)]));
}

/** `MetaStore.delete` as a one-op transaction. */
export async function deleteThroughTxn(
  txn: Txn,
  key: string,
  options: MetaPutOptions = {},
): Promise<boolean> {
  return deleted(await txn([deleteOp(key, options)]));
}
