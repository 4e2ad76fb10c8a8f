import type { MetaPutOptions } from '@robustmq/core';
import type { MetaOp } from './command.js';
import type { MetaOpResult } from './state-machine.js';

type Txn = (ops: MetaOp[]) => Promise<MetaOpResult[]>;

/** `MetaStore.put` as a one-op transaction, the same for every store built on `txn`. */
export async function putThroughTxn(
  txn: Txn,
  key: string,
  value: Uint8Array,
  options: MetaPutOptions = {},
): Promise<number> {
  const op: MetaOp = { type: 'put', key, value };
  if (options.ifRevision !== undefined) op.ifRevision = options.ifRevision;
  const [result] = await txn([op]);
  return (result as Extract<MetaOpResult, { type: 'put' }>).revision;
}

/** `MetaStore.delete` as a one-op transaction. */
export async function deleteThroughTxn(
  txn: Txn,
  key: string,
  options: MetaPutOptions = {},
): Promise<boolean> {
  const op: MetaOp = { type: 'delete', key };
  if (options.ifRevision !== undefined) op.ifRevision = options.ifRevision;
  const [result] = await txn([op]);
  return (result as Extract<MetaOpResult, { type: 'delete' }>).deleted;
}
